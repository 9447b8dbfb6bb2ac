"""Run the CLI as ``python -m hqsync``."""

from hqsync.cli import main

main()
