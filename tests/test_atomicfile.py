"""The shared --out writer: regular files, links, FIFOs, devices and errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hqsync.atomicfile import open_output, write_output
from hqsync.errors import OutputError


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.suffix == ".tmp")


def test_write_output_new_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_output(target, "text\n")
    assert target.read_text(encoding="utf-8") == "text\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_output_new_private_file(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    write_output(target, "{}\n", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_write_output_keeps_existing_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    write_output(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_write_output_private_keeps_existing_mode(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    target.chmod(0o644)
    write_output(target, "new\n", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_output_creates_parent_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    write_output(target, "text\n")
    assert target.read_text() == "text\n"


def test_write_output_symlink_replaces_target(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_output(link, "new\n")
    assert link.is_symlink()
    assert real.read_text() == "new\n"
    assert _leftovers(tmp_path) == []


def test_write_output_dangling_symlink_creates_target(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "missing.txt")
    write_output(link, "new\n")
    assert link.is_symlink()
    assert (tmp_path / "missing.txt").read_text() == "new\n"


def test_write_output_fifo_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.append(fifo.read_bytes()), daemon=True
    )
    reader.start()
    write_output(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert _leftovers(tmp_path) == []


def test_write_output_character_device_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A regular file posing as a character device: written in place, the
    # inode stays the same, so the code never renamed over it.
    device = tmp_path / "device"
    device.write_text("")
    inode = device.stat().st_ino
    real_stat = os.stat

    def fake_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if Path(os.fsdecode(path)) == device:  # type: ignore[arg-type]
            fields = list(result)
            fields[stat.ST_MODE] = stat.S_IFCHR | 0o666
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(os, "stat", fake_stat)
    write_output(device, "to the device\n")
    monkeypatch.undo()
    assert device.read_text() == "to the device\n"
    assert device.stat().st_ino == inode
    assert _leftovers(tmp_path) == []


def test_open_output_error_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), open_output(target) as stream:
        stream.write("half")
        raise RuntimeError("stop")
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_open_output_ctrl_c_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), open_output(target) as stream:
        stream.write("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_open_output_failed_rename_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def failing_replace(source: object, destination: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match="No space left on device"):
        write_output(target, "new\n")
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_write_output_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="it is a folder"):
        write_output(tmp_path, "text\n")


def test_write_output_parent_is_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        write_output(tmp_path / "file" / "out.txt", "text\n")


def test_write_output_dash_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    write_output("-", "to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"


WRITE_DEV_STDOUT = (
    "from hqsync.atomicfile import write_output; "
    "write_output('/dev/stdout', 'through stdout\\n')"
)


def test_write_output_dev_stdout_pipe(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WRITE_DEV_STDOUT],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"through stdout\n"
    assert list(tmp_path.iterdir()) == []


def test_write_output_dev_stdout_redirected(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("")
    inode = target.stat().st_ino
    with target.open("ab") as handle:
        subprocess.run(
            [sys.executable, "-c", WRITE_DEV_STDOUT], stdout=handle, check=True
        )
    assert target.read_text() == "through stdout\n"
    assert target.stat().st_ino == inode
