"""Where ``hqsync export`` puts files: empty instances and colliding site names."""

from __future__ import annotations

from pathlib import Path

from .helpers import SERVICES, ConfigDir
from .test_cli import run

SITES_SHARING_A_FILE_NAME = """
kind: Site
name: a b
folders: [/Inbox]
---
kind: Site
name: a_b
folders: [/Outbox]
"""


def test_export_empty_instance_says_so(config_dir: ConfigDir, tmp_path: Path) -> None:
    out = tmp_path / "exported"

    result = run(config_dir, "export", "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert out.is_dir()
    assert "no live resources" in result.stdout


def test_export_sites_sharing_file_name(config_dir: ConfigDir, tmp_path: Path) -> None:
    config_dir.write("services.yaml", SERVICES)
    config_dir.write("sites.yaml", SITES_SHARING_A_FILE_NAME)
    applied = run(config_dir, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    out = tmp_path / "exported"

    result = run(config_dir, "export", "--out", str(out))

    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in (out / "sites").iterdir())
    assert written == ["a_b-2.yaml", "a_b.yaml"]
    texts = "".join(path.read_text() for path in (out / "sites").iterdir())
    assert "/Inbox" in texts
    assert "/Outbox" in texts
