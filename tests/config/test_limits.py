"""Size and file-type limits on the files a configuration reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hqsync.config import ConfigError, load_config, load_project
from hqsync.config.files import MAX_CONFIG_FILE_BYTES, MAX_SECRET_FILE_BYTES
from hqsync.config.render import Renderer
from hqsync.config.sandbox import MAX_LENGTH
from hqsync.config.yamlload import RenderError

from .helpers import SERVICE, TEST_ENVIRON, write_tree

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
        load_config(config_dir, environ=TEST_ENVIRON)
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


# Template size limits -------------------------------------------------------

OVERSIZED_TEMPLATES = {
    "string_repeat": "{{ 'x' * 10**9 }}",
    "list_repeat": "{{ ['x'] * 10**9 }}",
    "huge_power": "{{ 2**100000 }}",
    "huge_product": "{{ (2**6000) * (2**6000) }}",
    "concatenation": "{{ ('x' * 60000) + ('x' * 60000) }}",
    "center_filter": "{{ 'x'|center(10**9) }}",
    "center_method": "{{ 'x'.center(10**9) }}",
    "ljust_method": "{{ 'x'.ljust(10**9) }}",
    "indent_filter": "{{ 'x'|indent(10**9) }}",
    "printf_width": "{{ '%1000000000s' % 'x' }}",
    "printf_star": "{{ '%*s' % (10**9, 'x') }}",
    "format_filter": "{{ '%1000000000s'|format('x') }}",
    "str_format_width": "{{ '{:>1000000000}'.format('x') }}",
    "str_format_nested": "{{ '{:{}}'.format('x', 10**9) }}",
    "join_filter": "{{ range(100000)|join('x' * 1000) }}",
    "join_method": "{{ ('x' * 1000).join(range(100000)|map('string')) }}",
    "wordwrap_filter": "{{ 'a b c'|wordwrap(1, wrapstring='x' * 90000) }}",
    "replace_filter": "{{ ('x' * 99999)|replace('', 'yy') }}",
    "replace_method": "{{ 'a'.replace('', 'x' * 100000) }}",
    "expandtabs": "{{ 'x\t'.expandtabs(10**9) }}",
    "slice_filter": "{{ range(10)|slice(10**9)|list }}",
    "sum_filter": "{{ ([[1] * 99999] * 99999)|sum(start=[])|length }}",
    "list_of_long_strings": "{{ (['x' * 99999] * 100000)|length }}",
    "map_budget": "{{ range(100000)|map('center', 99999)|list|length }}",
    "loop_output": "{% for i in range(100000) %}{{ 'x' * 99999 }}{% endfor %}",
}


@pytest.mark.parametrize(
    "source", OVERSIZED_TEMPLATES.values(), ids=OVERSIZED_TEMPLATES.keys()
)
def test_render_oversized_template_rejected(source: str) -> None:
    renderer = Renderer({}, {})

    with pytest.raises(RenderError) as excinfo:
        renderer.render(source)

    assert "limit" in str(excinfo.value) or "not allowed" in str(excinfo.value)


@pytest.mark.parametrize(
    "source",
    [
        "{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}{{ twice('a') }}",
        "{% set text %}abc{% endset %}{{ text }}",
        "{% filter upper %}abc{% endfilter %}",
        "{% for i in [1] recursive %}{{ loop([]) }}{% endfor %}",
    ],
)
def test_render_buffering_tag_rejected(source: str) -> None:
    with pytest.raises(RenderError) as excinfo:
        Renderer({}, {}).render(source)

    assert "is not allowed" in str(excinfo.value)


@pytest.mark.parametrize("name", ["lipsum", "namespace"])
def test_render_growing_global_removed(name: str) -> None:
    with pytest.raises(RenderError) as excinfo:
        Renderer({}, {}).render(f"{{{{ {name}() }}}}")

    assert f"'{name}' is undefined" in str(excinfo.value)


def test_render_long_variable_rejected() -> None:
    renderer = Renderer({"long": "x" * (MAX_LENGTH + 1)}, {})

    with pytest.raises(RenderError) as excinfo:
        renderer.render("{{ vars.long }}")

    assert str(excinfo.value) == (
        f"template '{{{{ vars.long }}}}' renders {MAX_LENGTH + 1} characters; "
        f"the limit is {MAX_LENGTH}"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ ([1] * 99999)|length }}", "99999"),
        ("{{ 2**64 }}", str(2**64)),
        ("{{ '%05d' % 42 }}", "00042"),
        ("{{ '{:>5}'.format('x') }}", "    x"),
        ("{{ 'x'|center(5) }}", "  x  "),
        ("{{ range(3)|map('string')|join(',') }}", "0,1,2"),
        ("{{ [[1], [2]]|sum(start=[])|length }}", "2"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ 'a b'|replace(' ', '-') }}", "a-b"),
    ],
)
def test_render_small_template_allowed(source: str, expected: str) -> None:
    assert Renderer({}, {}).render(source) == expected


def test_load_config_oversized_template_located(tmp_path: Path) -> None:
    service = SERVICE.replace("name: intake", "name: \"{{ 'x' * 10**9 }}\"")
    write_tree(tmp_path, {"s.yaml": service})

    assert _load_problems(tmp_path) == [
        f"{tmp_path}/s.yaml:2:7: template \"{{{{ 'x' * 10**9 }}}}\" exceeds a size "
        "limit: the size of the result of '*' (1000000000) is over the limit "
        "of 100000"
    ]
