"""Size and file-type limits on the files a configuration reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hqsync.config import ConfigError, load_config, load_project
from hqsync.config.files import MAX_CONFIG_FILE_BYTES, MAX_SECRET_FILE_BYTES

from .helpers import SERVICE, write_tree

FROM_FILE = SERVICE.replace("{from_env: HQ_TEST_KEY}", "{from_file: KEY_PATH}")


def _load_with_key(tmp_path: Path, key_path: str) -> list[str]:
    config_dir = tmp_path / "config"
    write_tree(config_dir, {"s.yaml": FROM_FILE.replace("KEY_PATH", key_path)})
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_dir, environ={})
    return [str(problem) for problem in excinfo.value.problems]


def test_secret_file_device_rejected(tmp_path: Path) -> None:
    problems = _load_with_key(tmp_path, "/dev/zero")

    assert problems == [
        f"{tmp_path}/config/s.yaml:6:8: key: cannot read secret file /dev/zero: "
        "not a regular file (a character device)"
    ]


def test_secret_file_fifo_rejected(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")

    problems = _load_with_key(tmp_path, str(tmp_path / "fifo"))

    assert problems == [
        f"{tmp_path}/config/s.yaml:6:8: key: cannot read secret file "
        f"{tmp_path}/fifo: not a regular file (a FIFO)"
    ]


def test_secret_file_too_large_rejected(tmp_path: Path) -> None:
    (tmp_path / "big.key").write_bytes(b"k" * (MAX_SECRET_FILE_BYTES + 1))

    problems = _load_with_key(tmp_path, str(tmp_path / "big.key"))

    assert problems == [
        f"{tmp_path}/config/s.yaml:6:8: key: cannot read secret file "
        f"{tmp_path}/big.key: file is larger than the limit of 64 KiB"
    ]


def test_secret_file_at_limit_accepted(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    write_tree(config_dir, {"s.yaml": FROM_FILE.replace("KEY_PATH", "k")})
    (config_dir / "k").write_bytes(b"k" * (MAX_SECRET_FILE_BYTES - 1) + b"\n")

    config = load_config(config_dir, environ={})

    assert config.secrets[("intake", "key")].reveal() == "k" * (
        MAX_SECRET_FILE_BYTES - 1
    )


def test_secret_file_trailing_newlines_stripped(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    write_tree(config_dir, {"s.yaml": FROM_FILE.replace("KEY_PATH", "k")})
    (config_dir / "k").write_bytes(b"  secret value \r\n\n")

    config = load_config(config_dir, environ={})

    assert config.secrets[("intake", "key")].reveal() == "  secret value "


def test_secret_file_not_utf8_rejected(tmp_path: Path) -> None:
    (tmp_path / "bin.key").write_bytes(b"CANARY-\xff\xfe")

    problems = _load_with_key(tmp_path, str(tmp_path / "bin.key"))

    assert problems == [
        f"{tmp_path}/config/s.yaml:6:8: key: secret file {tmp_path}/bin.key is "
        "not UTF-8 text (invalid byte at offset 7); write the secret as UTF-8 text"
    ]


def _load_problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_dir, environ={})
    return [str(problem) for problem in excinfo.value.problems]


def test_project_file_device_rejected(tmp_path: Path) -> None:
    (tmp_path / "hqsync.yaml").symlink_to("/dev/zero")

    with pytest.raises(ConfigError) as excinfo:
        load_project(tmp_path)

    assert [str(problem) for problem in excinfo.value.problems] == [
        f"{tmp_path}/hqsync.yaml:1:1: cannot read file: not a regular file "
        "(a character device)"
    ]


def test_resource_file_device_rejected(tmp_path: Path) -> None:
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")

    assert _load_problems(tmp_path) == [
        f"{tmp_path}/zero.yaml:1:1: cannot read file: not a regular file "
        "(a character device)"
    ]


def test_resource_file_fifo_rejected(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")

    assert _load_problems(tmp_path) == [
        f"{tmp_path}/pipe.yaml:1:1: cannot read file: not a regular file (a FIFO)"
    ]


def test_resource_file_too_large_rejected(tmp_path: Path) -> None:
    with (tmp_path / "huge.yaml").open("wb") as handle:
        handle.truncate(MAX_CONFIG_FILE_BYTES + 1)

    assert _load_problems(tmp_path) == [
        f"{tmp_path}/huge.yaml:1:1: cannot read file: file is larger than the "
        "limit of 50 MiB"
    ]
