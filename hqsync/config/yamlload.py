"""Read YAML streams into plain values while keeping every node for locations.

PyYAML's C parser composes the node graph, and each node carries its
``start_mark``. This module builds plain Python values from that graph itself.
PyYAML's constructors are not used because they accept duplicate keys
silently and drop the scalar's original text, which the error messages quote.

Mapping keys are always the key's source text, so ``on:`` is the key ``"on"``
and never ``True``. Values follow YAML 1.1 as PyYAML resolves them, except
timestamps, which stay strings (YAML 1.2 has no timestamp type).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hqsync.config.files import MAX_CONFIG_FILE_BYTES, FileReadError, read_limited
from hqsync.errors import Problem

log = logging.getLogger(__name__)

try:
    _Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    log.warning("libyaml is not available; YAML loads with the slower Python parser")
    _Loader = yaml.SafeLoader

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"

# PyYAML's own scalar constructors turn YAML 1.1 text into bool, int and float
# (sexagesimal, octal, hex, underscores); they only read ``node.value``.
_SAFE_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_CONSTRUCTORS: dict[str, Callable[[ScalarNode], Any]] = {
    BOOL_TAG: lambda node: _SAFE_CONSTRUCTOR.construct_yaml_bool(node),
    INT_TAG: lambda node: _SAFE_CONSTRUCTOR.construct_yaml_int(node),
    FLOAT_TAG: lambda node: _SAFE_CONSTRUCTOR.construct_yaml_float(node),
    NULL_TAG: lambda node: None,
    TIMESTAMP_TAG: lambda node: node.value,
}

MAX_ALIAS_EXPANSION = 100_000
"""Nodes that aliases may add to one document; stops "billion laughs" input."""

Render = Callable[[str], str]
"""Render one string scalar's template text; raises ``RenderError``."""


class RenderError(Exception):
    """A string scalar could not be rendered; the message is for the user."""


@dataclass
class YamlDocument:
    """One document of a stream: its plain value and the node it came from."""

    file: str
    node: Node
    data: Any
    index: int = 0
    """Position in the stream, counting empty documents, for ``compose_stream``."""
    unrendered: frozenset[tuple[int, int]] = frozenset()
    """Line and column of each string whose template failed, already reported."""

    @property
    def line(self) -> int:
        """Return the 1-based line where the document starts."""
        return int(self.node.start_mark.line) + 1

    @property
    def column(self) -> int:
        """Return the 1-based column where the document starts."""
        return int(self.node.start_mark.column) + 1


def problem_at(file: str, node: Node, message: str) -> Problem:
    """Make a Problem at the start of ``node``."""
    mark = node.start_mark
    return Problem(file, mark.line + 1, mark.column + 1, message)


def read_stream(
    path: Path, display: str, render: Render | None, problems: list[Problem]
) -> Iterator[YamlDocument]:
    """Yield the non-empty documents of the file at ``path``.

    Every problem found (syntax, duplicate keys, tags, rendering) goes into
    ``problems``. A document with problems is still yielded, so that its other
    fields get validated too. A syntax error ends the stream.
    """
    try:
        text = read_limited(path, MAX_CONFIG_FILE_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(display, 1, 1, f"file is not valid UTF-8: {exc.reason}")
        )
        return
    except FileNotFoundError as exc:
        problems.append(Problem(display, 1, 1, f"cannot read file: {exc.strerror}"))
        return
    except FileReadError as exc:
        problems.append(Problem(display, 1, 1, f"cannot read file: {exc}"))
        return
    yield from read_text(text, display, render, problems)


def read_text(
    text: str, display: str, render: Render | None, problems: list[Problem]
) -> Iterator[YamlDocument]:
    """Yield the non-empty documents of a YAML stream given as text."""
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
            if node is None or _is_empty(node):
                continue
            builder = _Builder(display, render, problems)
            try:
                data = builder.build(node)
            except RecursionError:
                problems.append(
                    problem_at(display, node, "document is nested too deeply")
                )
                continue
            unrendered = frozenset(builder.unrendered)
            yield YamlDocument(display, node, data, index, unrendered)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(display, line, column, _yaml_error_message(exc)))
    except yaml.YAMLError as exc:
        problems.append(Problem(display, 1, 1, f"invalid YAML: {exc}"))


def compose_stream(path: Path) -> list[Node | None]:
    """Compose every document of a file again, to find a position after loading.

    Returns an empty list if the file can no longer be read or parsed.
    """
    try:
        text = read_limited(path, MAX_CONFIG_FILE_BYTES).decode("utf-8")
        return list(yaml.compose_all(text, Loader=_Loader))
    except (
        OSError,
        FileReadError,
        UnicodeDecodeError,
        yaml.YAMLError,
        RecursionError,
    ):
        return []


def _is_empty(node: Node) -> bool:
    # An explicit "---" with nothing after it composes to an empty null scalar.
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG and node.value == ""


def _yaml_error_message(exc: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (exc.context, exc.problem) if part]
    return "invalid YAML: " + ", ".join(parts) if parts else "invalid YAML"


class _Builder:
    """Construct one document's plain value from its node graph."""

    def __init__(
        self, file: str, render: Render | None, problems: list[Problem]
    ) -> None:
        self.file = file
        self.render = render
        self.problems = problems
        self.budget = MAX_ALIAS_EXPANSION
        self.active: set[int] = set()
        self.values: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}
        self.unrendered: set[tuple[int, int]] = set()

    def build(self, node: Node) -> Any:
        # A node built before is an alias target: its value is shared, and its
        # expanded size counts against the budget, since validation walks it
        # once per use.
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        key = id(node)
        if key in self.values:
            if self.budget < 0:
                return None  # reported once, when the budget ran out
            self.budget -= _size(node, self.sizes)
            if self.budget < 0:
                self._problem(
                    node,
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes; "
                    "write the repeated parts out or use fewer aliases",
                )
                return None
            return self.values[key]
        if key in self.active:
            self._problem(node, "an alias refers to a node that contains it")
            return None
        self.active.add(key)
        if isinstance(node, MappingNode):
            value: Any = self._mapping(node)
        elif isinstance(node, SequenceNode):
            value = self._sequence(node)
        else:
            value = None
        self.active.discard(key)
        self.values[key] = value
        return value

    def _problem(self, node: Node, message: str) -> None:
        self.problems.append(problem_at(self.file, node, message))

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == STR_TAG:
            value: str = node.value
            if self.render is not None and ("{{" in value or "{%" in value):
                try:
                    return self.render(value)
                except RenderError as exc:
                    self._problem(node, str(exc))
                    mark = node.start_mark
                    self.unrendered.add((mark.line + 1, mark.column + 1))
            return value
        construct = _SCALAR_CONSTRUCTORS.get(tag)
        if construct is None:
            self._problem(node, f"unsupported YAML tag {tag}")
            return node.value
        try:
            return construct(node)
        except (ValueError, yaml.YAMLError):
            self._problem(
                node, f"`{node.value}` is not a valid {tag.rsplit(':', 1)[-1]}"
            )
            return node.value

    def _sequence(self, node: SequenceNode) -> list[Any]:
        if node.tag != SEQ_TAG:
            self._problem(node, f"unsupported YAML tag {node.tag}")
        return [self.build(item) for item in node.value]

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        if node.tag != MAP_TAG:
            self._problem(node, f"unsupported YAML tag {node.tag}")
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merged.update(self._merge(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(
                    key_node,
                    "a mapping key must be a plain value, not a list or mapping",
                )
                continue
            key = key_node.value
            first = seen.get(key)
            if first is not None:
                mark = first.start_mark
                self._problem(
                    key_node,
                    f"duplicate key '{key}' (first defined at line {mark.line + 1}, "
                    f"column {mark.column + 1})",
                )
                continue
            seen[key] = key_node
            result[key] = self.build(value_node)
        if merged:
            # Keys written in the mapping itself win over merged ones (YAML merge).
            return {**merged, **result}
        return result

    def _merge(self, node: Node) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                self._problem(source, "'<<' merges a mapping or a list of mappings")
                continue
            value = self.build(source)
            if isinstance(value, dict):
                merged.update(value)
        return merged


def _size(node: Node, sizes: dict[int, int]) -> int:
    """Count the nodes under ``node``, aliases counted at every use."""
    key = id(node)
    known = sizes.get(key)
    if known is not None:
        return known
    sizes[key] = 1  # a cycle counts once; the builder reports it
    if isinstance(node, MappingNode):
        size = 1 + sum(_size(k, sizes) + _size(v, sizes) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        size = 1 + sum(_size(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[key] = size
    return size


# Finding nodes again -----------------------------------------------------------


def child_node(node: Node, key: str | int) -> Node | None:
    """Return the value node under ``key`` of a mapping or index of a sequence."""
    if isinstance(node, MappingNode) and isinstance(key, str):
        merges: list[Node] = []
        for key_node, value_node in reversed(node.value):
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
            elif isinstance(key_node, ScalarNode) and key_node.value == key:
                found_node: Node = value_node
                return found_node
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                found = child_node(source, key)
                if found is not None:
                    return found
        return None
    if (
        isinstance(node, SequenceNode)
        and isinstance(key, int)
        and key < len(node.value)
    ):
        item: Node = node.value[key]
        return item
    return None


def key_node(node: Node, key: str) -> Node | None:
    """Return the key node of ``key`` in a mapping node."""
    if isinstance(node, MappingNode):
        for candidate, _ in node.value:
            if isinstance(candidate, ScalarNode) and candidate.value == key:
                return candidate
    return None


def node_at(root: Node, path: tuple[str | int, ...]) -> Node:
    """Return the deepest node along ``path`` that exists."""
    node = root
    for key in path:
        child = child_node(node, key)
        if child is None:
            break
        node = child
    return node


def describe_node(node: Node) -> str:
    """Describe what a node holds, in the words of an error message."""
    if isinstance(node, MappingNode):
        keys = [key.value for key, _ in node.value if isinstance(key, ScalarNode)]
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        return f"a mapping with keys {shown}" if keys else "an empty mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if not isinstance(node, ScalarNode):
        return "a value"
    text = node.value
    if node.tag == STR_TAG:
        return f"the string '{text}'"
    if node.tag == NULL_TAG:
        return "an empty value" if text in ("", "~") else f"null (`{text}`)"
    if node.tag == BOOL_TAG:
        return f"the boolean `{text}`"
    if node.tag in (INT_TAG, FLOAT_TAG):
        return f"the number `{text}`"
    return f"`{text}`"


def yaml_hint(node: Node) -> str | None:
    """Explain a plain scalar that YAML 1.1 reads as something other than text."""
    if not isinstance(node, ScalarNode) or node.tag == STR_TAG:
        return None
    text = node.value
    if node.tag == BOOL_TAG:
        return f"`{text}` is a YAML 1.1 boolean here; quote it: '{text}'"
    if node.tag in (INT_TAG, FLOAT_TAG):
        value = _SCALAR_CONSTRUCTORS[node.tag](node)
        if str(value) == text:
            return f"`{text}` is a number here; quote it: '{text}'"
        return f"`{text}` is read as the number {value}; quote it: '{text}'"
    if node.tag == NULL_TAG:
        if text in ("", "~"):
            return "the value is empty"
        return f"`{text}` is read as null; quote it: '{text}'"
    return None
