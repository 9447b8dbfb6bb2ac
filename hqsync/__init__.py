"""hqsync: HighQ-style workflow webhooks managed as code."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hqsync")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
