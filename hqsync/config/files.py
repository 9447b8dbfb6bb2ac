"""Read input files with a size limit, accepting regular files only.

A path in a config can name ``/dev/zero``, a FIFO or a huge file. Reading one
without a limit blocks forever or fills memory, so every file the
configuration names is read here: stat the open descriptor, then read at most
one byte past the limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB

MAX_CONFIG_FILE_BYTES = 50 * MIB
"""Largest hqsync.yaml or resource file; a 20,000-rule file is about 6 MB."""

MAX_SECRET_FILE_BYTES = 64 * KIB
"""Largest ``from_file`` secret; keys, client secrets and URLs are far smaller."""

MAX_TEMPLATE_FILE_BYTES = 10 * MIB
"""Largest site template file that ``hqsync template import`` reads."""


class FileReadError(Exception):
    """A file cannot be read; the message names the cause but not the path."""


def read_limited(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file at ``path``; raise if over ``limit``.

    Raises FileNotFoundError when the file is missing and FileReadError when
    it is not a regular file, is larger than ``limit`` bytes or cannot be read.
    """
    try:
        # O_NONBLOCK keeps open() from waiting for a writer when path is a FIFO.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileReadError(exc.strerror or type(exc).__name__) from None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            mode = os.fstat(descriptor).st_mode
            if not stat.S_ISREG(mode):
                raise FileReadError(f"not a regular file ({_file_type(mode)})")
            # Read one byte more than allowed: st_size is 0 for files in /proc,
            # and a file can grow between fstat and read.
            data = handle.read(limit + 1)
        except OSError as exc:
            raise FileReadError(exc.strerror or type(exc).__name__) from None
    if len(data) > limit:
        raise FileReadError(f"file is larger than the limit of {format_size(limit)}")
    return data


def format_size(size: int) -> str:
    """Return a byte count as ``64 KiB`` or ``10 MiB`` when it divides evenly."""
    for unit, factor in (("MiB", MIB), ("KiB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
