"""Output files of the plan commands: export keeps files unless --force."""

from __future__ import annotations

from pathlib import Path

from .helpers import ConfigDir
from .test_cli import run


def test_export_existing_file_rejected(basic_config: ConfigDir, tmp_path: Path) -> None:
    run(basic_config, "apply", "--auto-approve")
    out = tmp_path / "exported"
    out.mkdir()
    (out / "services.yaml").write_text("# precious\n")
    result = run(basic_config, "export", "--out", str(out))
    assert result.returncode == 1
    assert str(out / "services.yaml") in result.stderr
    assert "--force" in result.stderr
    assert (out / "services.yaml").read_text() == "# precious\n"
    assert not (out / "sites").exists()


def test_export_force_overwrites(basic_config: ConfigDir, tmp_path: Path) -> None:
    run(basic_config, "apply", "--auto-approve")
    out = tmp_path / "exported"
    out.mkdir()
    (out / "services.yaml").write_text("# precious\n")
    result = run(basic_config, "export", "--out", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert "kind: ExternalService" in (out / "services.yaml").read_text()


def test_export_keeps_other_files(basic_config: ConfigDir, tmp_path: Path) -> None:
    run(basic_config, "apply", "--auto-approve")
    out = tmp_path / "exported"
    out.mkdir()
    (out / "notes.md").write_text("mine\n")
    result = run(basic_config, "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "notes.md").read_text() == "mine\n"


def test_export_missing_folder_created(basic_config: ConfigDir, tmp_path: Path) -> None:
    run(basic_config, "apply", "--auto-approve")
    out = tmp_path / "a" / "b"
    result = run(basic_config, "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "services.yaml").is_file()


def test_plan_out_dash_rejected(basic_config: ConfigDir, tmp_path: Path) -> None:
    result = run(basic_config, "plan", "--out", "-")
    assert result.returncode == 1
    assert "--out - is not supported" in result.stderr
