"""Write output files (``--out``) so that a reader never sees half a file.

What :func:`open_output` does depends on what the path is:

- ``-``: it writes to standard output.
- a regular file or a new path: it writes a temporary file in the same folder,
  fsyncs it and renames it over the path. On any error, Ctrl-C included, the
  temporary file is removed and the old file is left as it was. A new file
  gets mode 0666 minus the umask, or 0600 when ``private``. A replaced file
  keeps its mode, and its owner where the user may set it.
- a symbolic link: it resolves the link and replaces the target as above, so
  the link stays a link.
- a FIFO, a character device or another file that is not regular, or a path
  that leads through /proc such as /dev/stdout: it writes straight into it,
  without a temporary file or a rename.

Missing parent folders are created. This module imports nothing from hqsync
but :mod:`hqsync.errors`, so every package may use it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from hqsync.errors import OutputError

STDOUT = "-"
"""The ``--out`` value that means standard output."""

PRIVATE_MODE = 0o600


def write_output(
    path: str | os.PathLike[str], text: str, *, private: bool = False
) -> None:
    """Write ``text`` to ``path`` as :func:`open_output` describes."""
    with open_output(path, private=private) as stream:
        stream.write(text)


@contextlib.contextmanager
def open_output(
    path: str | os.PathLike[str],
    *,
    private: bool = False,
    newline: str | None = None,
) -> Iterator[TextIO]:
    """Open ``path`` for UTF-8 text output; replace it only when the block succeeds.

    Raise OutputError if the path cannot be written. ``private`` creates a new
    file with mode 0600; a replaced file always keeps its mode.
    """
    if os.fspath(path) == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        existing: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise _error(path, exc) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise OutputError(f"cannot write {os.fspath(path)}: it is a folder")
    if existing is not None and (
        not stat.S_ISREG(existing.st_mode) or _through_proc(path)
    ):
        with _write_through(path, newline) as stream:
            yield stream
        return
    target = _resolve(Path(path))
    with _replace(path, target, existing, private, newline) as stream:
        yield stream


def _resolve(path: Path) -> Path:
    # A link is replaced at its target, so the link itself stays; strict=False
    # lets a dangling link name the file to create.
    if path.is_symlink():
        try:
            return Path(os.path.realpath(path, strict=False))
        except OSError as exc:
            raise _error(path, exc) from None
    return path


def _through_proc(path: str | os.PathLike[str]) -> bool:
    # /dev/stdout and /dev/fd/N lead to /proc/self/fd/N, a link to a file this
    # process has open (maybe a pipe). Its target is written, never replaced.
    current = os.path.abspath(path)
    for _ in range(40):
        folder, name = os.path.split(current)
        current = os.path.join(os.path.realpath(folder), name)
        if current.startswith("/proc/"):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    return False


@contextlib.contextmanager
def _write_through(
    shown: str | os.PathLike[str], newline: str | None
) -> Iterator[TextIO]:
    # No O_TRUNC and no O_CREAT: a FIFO or a device is written as it is, and
    # O_APPEND keeps what a shell's >> redirection of /dev/stdout holds.
    try:
        descriptor = os.open(shown, os.O_WRONLY | os.O_APPEND)
        stream = open(descriptor, "w", encoding="utf-8", newline=newline)  # noqa: SIM115
    except OSError as exc:
        raise _error(shown, exc) from None
    try:
        with stream:
            yield stream
    except OSError as exc:
        raise _error(shown, exc) from None


@contextlib.contextmanager
def _replace(
    shown: str | os.PathLike[str],
    target: Path,
    existing: os.stat_result | None,
    private: bool,
    newline: str | None,
) -> Iterator[TextIO]:
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise _error(shown, exc) from None
    try:
        with open(descriptor, "w", encoding="utf-8", newline=newline) as stream:
            _copy_metadata(stream.fileno(), existing, private)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _error(shown, exc) from None
        raise
    _sync_folder(folder)


def _copy_metadata(
    descriptor: int, existing: os.stat_result | None, private: bool
) -> None:
    if existing is None:
        mode = PRIVATE_MODE if private else 0o666 & ~_umask()
    else:
        mode = stat.S_IMODE(existing.st_mode)
        # Keep the owner where the user may set it (root, or the same owner).
        with contextlib.suppress(PermissionError):
            os.fchown(descriptor, existing.st_uid, existing.st_gid)
    os.fchmod(descriptor, mode)


def _umask() -> int:
    # NOTE: os.umask is the only portable way to read the umask, and it sets it
    # for a moment: a thread that creates a file in that moment gets umask 022.
    current = os.umask(0o022)
    os.umask(current)
    return current


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk. Some file
    # systems cannot fsync a folder; the file itself is already synced.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {os.fspath(path)}: {reason}")
