"""Every invalid configuration in corpus/ is rejected with its exact output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hqsync.config import yamlload

from .helpers import run_cli

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())


def test_corpus_has_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_rejected(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    expected = (CORPUS / case / "expected.txt").read_text(encoding="utf-8")

    result = run_cli("--config-dir", case, "validate")

    assert result.exit_code == 1
    assert result.output == expected
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", ["duplicate-key-nested", "literal-client-secret"])
def test_corpus_case_subprocess_exit_code(case: str) -> None:
    environ = {**os.environ, "HQ_TEST_KEY": "test-key-value"}
    environ.pop("HQ_TEST_MISSING", None)
    command = [sys.executable, "-m", "hqsync", "--config-dir", case, "validate"]

    completed = subprocess.run(
        command, cwd=CORPUS, env=environ, capture_output=True, text=True, check=False
    )

    expected = (CORPUS / case / "expected.txt").read_text(encoding="utf-8")
    assert completed.returncode == 1
    assert completed.stdout == expected
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "case", ["duplicate-key-nested", "hex-column-name", "alias-bomb"]
)
def test_corpus_case_pure_python_parser(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)
    expected = (CORPUS / case / "expected.txt").read_text(encoding="utf-8")

    result = run_cli("--config-dir", case, "validate")

    assert result.output == expected
