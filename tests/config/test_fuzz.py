"""Generated YAML, valid and broken: the loader raises ConfigError or nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hqsync.config import ConfigError, load_config
from hqsync.config.documents import lookalike_key
from hqsync.config.models import KINDS
from hqsync.config.render import Renderer
from hqsync.config.yamlload import RenderError

from .helpers import RULE, SERVICE, SITE

FIELD_NAMES = [
    "kind",
    "name",
    "url",
    "status",
    "auth",
    "type",
    "key",
    "token_url",
    "client_id",
    "client_secret",
    "isheets",
    "columns",
    "choices",
    "folders",
    "site",
    "trigger",
    "isheet",
    "folder",
    "conditions",
    "column",
    "field",
    "operator",
    "value",
    "actions",
    "service",
    "params",
    "template",
    "service_map",
    "rules",
    "from_env",
    "from_file",
    "generate",
    "enabled",
    "title",
    "description",
    "disable_unmapped",
    "<<",
]
SCALAR_TEXTS = [
    "yes",
    "no",
    "on",
    "off",
    "~",
    "null",
    "010",
    "0x1F",
    "1.10",
    "1_000",
    "0o17",
    "2026-12-01",
    ".inf",
    "{{ vars.x }}",
    "{{ env('HQ_FUZZ') }}",
    "{% if %}",
    "{{",
    "isheet_item_added",
    "file_added",
    "send_to_external_service",
    "internal",
    "https://a.invalid/?sig=x",
    "http://a.invalid/",
    "/Contracts",
    "active",
]
MAX_EXAMPLES = 120

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.sampled_from(SCALAR_TEXTS),
    st.sampled_from(KINDS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=5),
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8).map(
    lambda document: {"kind": document.pop("kind", "Rule"), **document}
)
FRAGMENTS = [
    "kind: ",
    "\n",
    "---\n",
    "  ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "!!binary ",
    "!Ref ",
    "'",
    '"',
    "#",
    "? ",
    "|\n",
    "\t",
    "%YAML 1.1\n",
    "name: x\n",
    "name: x\n",
    "\x00",
    "\ufeff",
    "é",
    "e\u0301",
]
EXAMPLES = [SERVICE, SITE, RULE]


def _load(files: dict[str, str | bytes]) -> None:
    """Load a config dir made of ``files``; only ConfigError may escape."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for name, content in files.items():
            path = root / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(root, cli_vars={"x": "1"}, environ={"HQ_FUZZ": "v"})
        except ConfigError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert problem.line >= 1
                assert problem.column >= 1


def _dump(data: Any) -> str:
    return yaml.safe_dump_all(data, allow_unicode=True, sort_keys=False)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(documents, min_size=1, max_size=4))
def test_fuzz_generated_documents(generated: list[dict[str, Any]]) -> None:
    _load({"generated.yaml": _dump(generated)})


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.sampled_from(FRAGMENTS)),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(min_value=0, max_value=400), max_size=3),
)
def test_fuzz_mutated_examples(
    example: str, inserts: list[tuple[int, str]], deletes: list[int]
) -> None:
    text = example
    for position, fragment in inserts:
        text = text[:position] + fragment + text[position:]
    for position in deletes:
        text = text[:position] + text[position + 1 :]
    _load({"site.yaml": SITE, "svc.yaml": SERVICE, "mutated.yaml": text})


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(content: bytes) -> None:
    _load({"bytes.yaml": content})


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_project_file(content: str) -> None:
    _load({"hqsync.yaml": content, "svc.yaml": SERVICE})


def test_fuzz_deep_nesting_is_a_config_error() -> None:
    deep = "kind: Rule\nname: " + "[" * 5000 + "]" * 5000 + "\n"
    block = "kind: Rule\nparams:\n" + "".join("  " * i + "a:\n" for i in range(1, 3000))
    for text in (deep, block):
        _load({"deep.yaml": text})


TEMPLATE_FRAGMENTS = [
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "vars",
    ".",
    "x",
    "missing",
    "env(",
    ")",
    "'HQ_FUZZ'",
    "'NOPE'",
    "(",
    "[",
    "]",
    "|upper",
    "|int",
    "1/0",
    " ",
    "if",
    "endif",
    "for",
    "in",
    "range(10**9)",
    "__class__",
    "__subclasses__()",
    "~",
    "+",
    "'a'",
]


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(st.lists(st.sampled_from(TEMPLATE_FRAGMENTS), max_size=12).map("".join))
def test_fuzz_renderer_raises_only_render_error(source: str) -> None:
    renderer = Renderer({"x": "1"}, {"HQ_FUZZ": "v"})

    try:
        result = renderer.render(source)
    except RenderError as exc:
        assert str(exc)
    else:
        assert isinstance(result, str)


def test_renderer_sandbox_blocks_attribute_escape() -> None:
    renderer = Renderer({}, {})

    with pytest.raises(RenderError) as excinfo:
        renderer.render("{{ ''.__class__.__mro__[1].__subclasses__() }}")

    assert "access to attribute '__class__' of 'str' object is unsafe" in str(
        excinfo.value
    )


def test_renderer_deep_nesting_is_render_error() -> None:
    renderer = Renderer({}, {})
    source = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"

    with pytest.raises(RenderError) as excinfo:
        renderer.render(source)

    assert str(excinfo.value).endswith("...' is nested too deeply")


TRICKY_TEXTS = ["yes", "no", "on", "off", "010", "0x1F", "1.10", "00123", "null", "~"]
names = st.one_of(
    st.sampled_from(TRICKY_TEXTS),
    st.from_regex(
        r"[A-Za-z0-9_\u00e9-]([A-Za-z0-9 ._\u00e9\u0301-]{0,14}[A-Za-z0-9._-])?",
        fullmatch=True,
    ),
)
free_texts = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="{"),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(names, min_size=1, max_size=4, unique_by=lookalike_key),
    st.lists(names, min_size=1, max_size=4, unique_by=lookalike_key),
    st.lists(names, min_size=1, max_size=4, unique_by=lookalike_key),
    st.one_of(st.sampled_from(TRICKY_TEXTS), free_texts),
    free_texts,
)
def test_fuzz_valid_config_round_trips(
    services: list[str],
    columns: list[str],
    rules: list[str],
    value: str,
    description: str,
) -> None:
    documents: list[dict[str, Any]] = [
        {
            "kind": "ExternalService",
            "name": name,
            "description": description,
            "url": "https://hook.example.invalid/notify",
            "auth": {"type": "header", "key": {"generate": True}},
        }
        for name in services
    ]
    documents.append(
        {
            "kind": "Site",
            "name": "site",
            "isheets": [{"name": "sheet", "columns": [{"name": c} for c in columns]}],
        }
    )
    documents.extend(
        {
            "kind": "Rule",
            "name": name,
            "site": "site",
            "trigger": {"type": "isheet_item_added", "isheet": "sheet"},
            "conditions": [
                {"column": columns[0], "operator": "equals", "value": value}
            ],
            "actions": [
                {
                    "type": "send_to_external_service",
                    "service": services[index % len(services)],
                    "columns": columns,
                }
            ],
        }
        for index, name in enumerate(rules)
    )

    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "all.yaml").write_text(_dump(documents), encoding="utf-8")
        config = load_config(directory, environ={})

    assert list(config.services) == services
    assert config.services[services[0]].description == description
    assert [
        column.name for column in config.sites["site"].isheets[0].columns
    ] == columns
    assert [name for _, name in config.rules] == rules
    assert config.rules[("site", rules[0])].conditions[0].value == value
