"""Names: control and invisible characters, whitespace and lookalike clashes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hqsync.config import ConfigError, load_config
from hqsync.config.models import NAME_PATTERN

from .helpers import SERVICE, SITE, TEST_ENVIRON, write_tree


def _fullwidth(text: str) -> str:
    """Return ``text`` in fullwidth forms, which NFKC maps back to ASCII."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


WIDE_INTAKE = _fullwidth("INTAKE")
WIDE_MATTER_ID = _fullwidth("matter_id")


def _problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_dir, environ=TEST_ENVIRON)
    return [str(problem) for problem in excinfo.value.problems]


def _site_named(tmp_path: Path, name: str) -> list[str]:
    quoted = name.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    site = SITE.replace("name: litigation", f'name: "{quoted}"')
    write_tree(tmp_path, {"site.yaml": site})
    return _problems(tmp_path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "x\x00y\x1b[31m",
            "invalid name 'x\\x00y\\x1b[31m': name contains U+0000, "
            "a control character",
        ),
        (
            "r1\u200b",
            "invalid name 'r1\\u200b': name contains U+200B ZERO WIDTH SPACE, "
            "an invisible character",
        ),
        (
            "x\u202eevil",
            "invalid name 'x\\u202eevil': name contains U+202E RIGHT-TO-LEFT "
            "OVERRIDE, an invisible character",
        ),
        (
            "a\u2028b",
            "invalid name 'a\\u2028b': name contains U+2028 LINE SEPARATOR, "
            "a line separator",
        ),
        (
            "p\ue000",
            "invalid name 'p\\ue000': name contains U+E000, a private-use character",
        ),
        (
            "tag\U000e0041",
            "name contains U+E0041 TAG LATIN CAPITAL LETTER A, an invisible character",
        ),
        (
            "trailing ",
            "invalid name 'trailing ': a name does not start or end with whitespace",
        ),
        ("a/b", "invalid name 'a/b': a name has no '/'"),
    ],
)
def test_name_invalid_character_rejected(
    tmp_path: Path, name: str, expected: str
) -> None:
    problems = _site_named(tmp_path, name)

    assert problems == [f"{tmp_path}/site.yaml:2:7: {expected}"]


def test_name_message_has_no_escape_bytes(tmp_path: Path) -> None:
    problems = _site_named(tmp_path, "x\x1b[31mred")

    assert "\x1b" not in problems[0]


@pytest.mark.parametrize("name", ["café", "Matters 2024", "emoji 😀", "日本"])
def test_name_visible_unicode_accepted(tmp_path: Path, name: str) -> None:
    write_tree(tmp_path, {"site.yaml": SITE.replace("litigation", name)})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert list(config.sites) == [name]


@pytest.mark.parametrize(
    "name", ["r1\u200b", "x\u202eevil", "a\x7fb", "a\u00adb", "a\ufeffb", "end "]
)
def test_name_pattern_rejects_in_schema(name: str) -> None:
    assert re.fullmatch(NAME_PATTERN, name) is None


def test_name_fullwidth_duplicate_rejected(tmp_path: Path) -> None:
    second = SERVICE.replace("name: intake", f"name: {WIDE_INTAKE}")
    write_tree(tmp_path, {"a.yaml": SERVICE, "b.yaml": second})

    problems = _problems(tmp_path)

    assert problems == [
        f"{tmp_path}/b.yaml:2:7: duplicate ExternalService name '{WIDE_INTAKE}': "
        "already defined as 'intake', the same text after Unicode compatibility "
        "normalisation (NFKC), which maps fullwidth and other lookalike forms to "
        f"plain ones at {tmp_path}/a.yaml:1:1"
    ]


def test_name_fullwidth_column_duplicate_rejected(tmp_path: Path) -> None:
    site = SITE.replace(
        "- {name: matter_id}",
        f"- {{name: matter_id}}\n      - {{name: {WIDE_MATTER_ID}}}",
    )
    write_tree(tmp_path, {"site.yaml": site})

    problems = _problems(tmp_path)

    assert len(problems) == 1
    assert f"duplicate column '{WIDE_MATTER_ID}': already in this list" in problems[0]
