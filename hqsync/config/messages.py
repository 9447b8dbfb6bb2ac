"""Turn pydantic validation errors into Problems at the YAML node they concern.

Pydantic reports a ``loc`` path through the data, with union member names
(``FromEnv``, ``constrained-str``) and discriminator tags mixed in. This module
separates the data path from those tags, collapses the errors of a union into
the one message a user can act on, and words each message in terms of YAML.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode

from hqsync.config import models
from hqsync.config.yamlload import (
    YamlDocument,
    describe_node,
    key_node,
    node_at,
    problem_at,
    yaml_hint,
)
from hqsync.errors import Problem

Path = tuple[str | int, ...]

SECRET_FIELDS = frozenset({"client_secret", "key", "token"})
_SHAPE_ERRORS = frozenset(
    {
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "dict_type",
        "list_type",
        "model_type",
        "model_attributes_type",
        "int_from_float",
        "none_required",
        "literal_error",
        "is_instance_of",
    }
)
_EXPECTED_BY_ERROR = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_from_float": "an integer",
}
_MEMBER_DESCRIPTIONS = {
    "str": "a string",
    "constrained-str": "a string",
    "int": "an integer",
    "constrained-int": "an integer",
    "float": "a number",
    "constrained-float": "a number",
    "bool": "true or false",
    "FromEnv": "{from_env: NAME}",
    "FromFile": "{from_file: PATH}",
    "Generate": "{generate: true}",
}
_PATTERN_MEANINGS = {
    "^/": "a folder path starts with '/'",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "a variable name has only letters, digits and '_'",
}


@dataclass
class _Error:
    path: Path
    tags: list[tuple[int, str]]
    details: ErrorDetails


def validation_problems(
    exc: ValidationError,
    model: type[BaseModel],
    document: YamlDocument,
    base: Path = (),
) -> list[Problem]:
    """Map every error of ``exc`` to a Problem at its node in ``document``.

    ``base`` is the data path of the validated value inside the document.
    """
    root = node_at(document.node, base)
    data = _value_at(document.data, base)
    errors = [_split(details, data) for details in exc.errors()]
    report = _Reporter(document, root, data, model)
    report.collapse(errors)
    # A value whose template failed contains the template text, so any problem
    # found in it repeats the render error reported at the same place.
    return [
        problem
        for problem in report.problems
        if (problem.line, problem.column) not in document.unrendered
    ]


def _value_at(data: Any, path: Path) -> Any:
    for key in path:
        data = data[key]
    return data


def _split(details: ErrorDetails, data: Any) -> _Error:
    """Separate the data path in ``loc`` from union member names and tags."""
    path: list[str | int] = []
    tags: list[tuple[int, str]] = []
    current = data
    loc = details["loc"]
    for index, item in enumerate(loc):
        missing_here = details["type"] == "missing" and index == len(loc) - 1
        if (
            isinstance(current, dict)
            and isinstance(item, str)
            and (item in current or missing_here)
        ):
            path.append(item)
            current = current.get(item)
        elif (
            isinstance(current, list)
            and isinstance(item, int)
            and 0 <= item < len(current)
        ):
            path.append(item)
            current = current[item]
        else:
            tags.append((len(path), str(item)))
    return _Error(tuple(path), tags, details)


class _Reporter:
    def __init__(
        self, document: YamlDocument, root: Node, data: Any, model: type[BaseModel]
    ) -> None:
        self.document = document
        self.root = root
        self.data = data
        self.model = model
        self.problems: list[Problem] = []

    def collapse(self, errors: list[_Error]) -> None:
        unions: dict[Path, list[_Error]] = defaultdict(list)
        for error in errors:
            if error.tags:
                position = error.tags[0][0]
                unions[error.path[:position]].append(error)
            else:
                self.problems.append(self._problem(error))
        for point, members in unions.items():
            self._collapse_union(point, members)

    def _collapse_union(self, point: Path, errors: list[_Error]) -> None:
        by_member: dict[str, list[_Error]] = defaultdict(list)
        for error in errors:
            by_member[error.tags[0][1]].append(
                _Error(error.path, error.tags[1:], error.details)
            )
        # A member that rejected the value's shape outright (a string where it
        # wants a mapping) is not what the user meant; the others are.
        plausible = {
            member: member_errors
            for member, member_errors in by_member.items()
            if not any(
                e.path == point and not e.tags and e.details["type"] in _SHAPE_ERRORS
                for e in member_errors
            )
        }
        if len(plausible) > 1:
            fewest = min(len(member_errors) for member_errors in plausible.values())
            plausible = {m: e for m, e in plausible.items() if len(e) == fewest}
        if len(plausible) == 1:
            self.collapse(next(iter(plausible.values())))
            return
        self.problems.append(self._union_problem(point, list(by_member)))

    def _union_problem(self, point: Path, members: list[str]) -> Problem:
        node = node_at(self.root, point)
        field = _field_name(point)
        alternatives = _join_alternatives(
            dict.fromkeys(
                _MEMBER_DESCRIPTIONS.get(m, _describe_member(m)) for m in members
            )
        )
        secret_only = all(m in ("FromEnv", "FromFile", "Generate") for m in members)
        literal = isinstance(_value_at(self.data, point), str)
        if field in SECRET_FIELDS and secret_only and literal:
            return problem_at(
                self.document.file,
                node,
                f"'{field}' is a secret and cannot be written literally; "
                f"use {alternatives}",
            )
        hint = yaml_hint(node)
        got = hint if hint else f"got {describe_node(node)}"
        return problem_at(self.document.file, node, f"expected {alternatives}; {got}")

    def _problem(self, error: _Error) -> Problem:
        details = error.details
        kind = details["type"]
        node = node_at(self.root, error.path)
        if kind == "extra_forbidden":
            field = str(error.path[-1])
            parent = node_at(self.root, error.path[:-1])
            target = key_node(parent, field) or node
            return problem_at(
                self.document.file, target, self._unknown_field(field, details)
            )
        if kind == "missing":
            field = str(details["loc"][-1])
            parent = node_at(self.root, error.path[:-1])
            return problem_at(
                self.document.file, parent, f"missing required field '{field}'"
            )
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            return self._tag_problem(error, node)
        return problem_at(self.document.file, node, _message(error, node))

    def _unknown_field(self, field: str, details: ErrorDetails) -> str:
        allowed = _fields_at(self.model, details["loc"][:-1])
        message = f"unknown field '{field}'"
        close = difflib.get_close_matches(field, sorted(allowed), n=1, cutoff=0.6)
        if close:
            return f"{message} (did you mean '{close[0]}'?)"
        if allowed:
            return f"{message}; valid fields: {', '.join(sorted(allowed))}"
        return message

    def _tag_problem(self, error: _Error, node: Node) -> Problem:
        ctx = error.details.get("ctx") or {}
        discriminator = str(ctx.get("discriminator", "'type'")).strip("'")
        expected = _quoted_list(str(ctx.get("expected_tags", "")))
        if error.details["type"] == "union_tag_not_found" or not isinstance(
            node, MappingNode
        ):
            if not isinstance(node, MappingNode):
                return problem_at(
                    self.document.file,
                    node,
                    f"expected a mapping; got {describe_node(node)}",
                )
            return problem_at(
                self.document.file,
                node,
                f"missing required field '{discriminator}' (one of: {expected})",
            )
        tag_node = node_at(node, (discriminator,))
        tag = str(ctx.get("tag", ""))
        close = difflib.get_close_matches(tag, expected.split(", "), n=1, cutoff=0.6)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        return problem_at(
            self.document.file,
            tag_node,
            f"invalid {discriminator} '{tag}'{suggestion}; expected one of: {expected}",
        )


def _message(error: _Error, node: Node) -> str:
    details = error.details
    kind = details["type"]
    ctx = details.get("ctx") or {}
    field = _field_name(error.path)
    if kind == "literal_error":
        expected = _quoted_list(str(ctx.get("expected", "")))
        if expected in ("True", "False", "1", "0"):
            # A boolean or number literal such as ``generate: true``.
            return f"expected {expected.lower()}; got {describe_node(node)}"
        hint = yaml_hint(node)
        if hint:
            return f"{hint.split(';')[0]}; expected one of: {expected}"
        shown = _show(details["input"], node)
        return f"invalid {field or 'value'} {shown}; expected one of: {expected}"
    if kind in _EXPECTED_BY_ERROR:
        hint = yaml_hint(node)
        if hint and kind == "string_type":
            return hint
        return f"expected {_EXPECTED_BY_ERROR[kind]}; got {describe_node(node)}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"'{field}' must not be empty"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return f"'{field}' needs at least one entry"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == models.NAME_PATTERN:
        name = str(details["input"])
        meaning = models.name_problem(name) or "invalid name"
        return f"invalid {field or 'value'} '{models.printable_name(name)}': {meaning}"
    if kind == "string_pattern_mismatch":
        meaning = _PATTERN_MEANINGS.get(
            str(ctx.get("pattern")), f"must match {ctx.get('pattern')}"
        )
        return f"invalid {field or 'value'} {_show(details['input'], node)}: {meaning}"
    if kind == "value_error":
        return str(ctx.get("error", details["msg"]))
    text = (
        details["msg"]
        .replace("Input should be", "expected")
        .replace("Value should", "expected")
    )
    text = text[0].lower() + text[1:] if text else "invalid value"
    return f"invalid {field or 'value'} {_show(details['input'], node)}: {text}"


def _field_name(path: Path) -> str:
    for item in reversed(path):
        if isinstance(item, str):
            return item
    return ""


def _show(value: Any, node: Node) -> str:
    # Quote the text as written: for a rendered template that is the template,
    # so a value read with env() does not reach the message.
    if isinstance(node, ScalarNode) and isinstance(value, str):
        return f"'{node.value}'"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict | list):
        return "(a mapping)" if isinstance(value, dict) else "(a list)"
    return f"`{value}`"


def _quoted_list(text: str) -> str:
    found = re.findall(r"'([^']*)'", text)
    return ", ".join(found) if found else text


def _join_alternatives(items: Iterable[str]) -> str:
    listed = list(items)
    if len(listed) <= 1:
        return "".join(listed)
    return ", ".join(listed[:-1]) + " or " + listed[-1]


def _describe_member(member: str) -> str:
    if member.startswith("list["):
        return "a list"
    if member.startswith("dict["):
        return "a mapping"
    return member


# Which fields a model allows at a loc ------------------------------------------


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> set[str]:
    """Return the field names valid at ``loc``, following pydantic's loc items."""
    current: Any = model
    for item in loc:
        current = _step(current, item)
        if current is None:
            return set()
    return {name for member in _members(current) for name in _model_fields(member)}


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _model_fields(member: Any) -> set[str]:
    if isinstance(member, type) and issubclass(member, BaseModel):
        return set(member.model_fields)
    return set()


def _step(annotation: Any, item: str | int) -> Any:
    members = [m for m in _members(annotation) if m is not type(None)]
    for member in members:
        if isinstance(member, type) and issubclass(member, BaseModel):
            only = len(members) == 1
            if isinstance(item, str) and item in member.model_fields and only:
                return member.model_fields[item].annotation
            if item == member.__name__ or item in _literal_tags(member):
                return member
        origin = typing.get_origin(member)
        if origin is list and isinstance(item, int):
            return typing.get_args(member)[0]
        if origin is dict and isinstance(item, str):
            return typing.get_args(member)[1]
    fields = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    for member in fields:
        if isinstance(item, str) and item in member.model_fields:
            return member.model_fields[item].annotation
    return annotation if len(members) > 1 else None


def _literal_tags(model: type[BaseModel]) -> tuple[Any, ...]:
    for name in ("type", "kind"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return typing.get_args(field.annotation)
    return ()
