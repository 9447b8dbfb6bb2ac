"""Find resource files, read their documents and validate each one by kind."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from yaml.nodes import Node

from hqsync.config import models
from hqsync.config.messages import validation_problems
from hqsync.config.yamlload import (
    FLOAT_TAG,
    INT_TAG,
    Render,
    YamlDocument,
    compose_stream,
    node_at,
    problem_at,
    read_stream,
)
from hqsync.errors import Problem

PROJECT_FILE = "hqsync.yaml"
YAML_SUFFIXES = (".yaml", ".yml")

VALIDATION_CONTEXT = {models.LOCATED_CHECKS: True}

MODEL_BY_KIND: dict[str, type[BaseModel]] = {
    "ExternalService": models.ExternalService,
    "Site": models.Site,
    "Rule": models.Rule,
    "SiteTemplate": models.SiteTemplate,
}


@dataclass
class Document:
    """One validated resource document and where it was written."""

    kind: str
    name: str
    file: str
    line: int
    column: int
    model: Any
    node: Node | None = field(default=None, repr=False)
    source: Path | None = field(default=None, repr=False)
    index: int = field(default=0, repr=False)
    numbers: frozenset[models.FieldPath] = field(default=frozenset(), repr=False)
    """Condition values already reported as numbers written like text."""
    item_marks: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    """Line and column of each rule of a SiteTemplate."""

    def problem(self, path: tuple[str | int, ...], message: str) -> Problem:
        """Make a Problem at the node under ``path`` (the document if it is gone)."""
        if self.node is None:
            return Problem(self.file, self.line, self.column, message)
        return problem_at(self.file, node_at(self.node, path), message)


class Positions:
    """Find the nodes of loaded documents again, composing each file once.

    Keeping every node graph raised the peak memory of a 20,000-rule load from
    about 130 MB to 390 MB. So each graph is dropped once its document is
    validated, and a file is composed again only to report a problem in it.
    """

    def __init__(self) -> None:
        self._streams: dict[Path, list[Node | None]] = {}

    def problem(
        self, document: Document, path: models.FieldPath, message: str
    ) -> Problem:
        """Make a Problem at the node under ``path`` of ``document``."""
        node = document.node
        if node is None and document.source is not None:
            stream = self._streams.get(document.source)
            if stream is None:
                stream = compose_stream(document.source)
                self._streams[document.source] = stream
            if document.index < len(stream):
                node = stream[document.index]
        if node is None:
            return Problem(document.file, document.line, document.column, message)
        return problem_at(document.file, node_at(node, path), message)


def display_path(path: Path) -> str:
    """Return ``path`` relative to the working directory when it is below it."""
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def name_key(name: str) -> str:
    """Return the form names are compared in: Unicode NFC, then case-folded."""
    return unicodedata.normalize("NFC", name).casefold()


def lookalike_key(name: str) -> str:
    """Return the form in which two names in one scope clash: NFKC, case-folded.

    It is wider than ``name_key``: fullwidth R1 (U+FF32 U+FF11) and R1 differ there
    but clash here, so a config cannot hold two names that look the same.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def suggest(name: str, candidates: list[str]) -> str:
    """Return ' (did you mean ...?)' or the list of defined names, for a message."""
    by_key = {name_key(candidate): candidate for candidate in candidates}
    if name_key(name) in by_key:
        return f" (did you mean '{by_key[name_key(name)]}'?)"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if not candidates:
        return " (none are defined)"
    shown = sorted(candidates)[:10]
    more = ", ..." if len(candidates) > len(shown) else ""
    return f" (defined: {', '.join(shown)}{more})"


def resource_files(config_dir: Path) -> Iterator[Path]:
    """Yield every resource file under ``config_dir``, sorted, hidden ones skipped."""
    for path in sorted(config_dir.rglob("*")):
        relative = path.relative_to(config_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        # Only directories are skipped: a FIFO, device or dangling link named
        # *.yaml is reported when read, not silently left out.
        if path.suffix not in YAML_SUFFIXES or path.is_dir():
            continue
        if relative.parts == (PROJECT_FILE,):
            continue
        yield path


def read_documents(
    config_dir: Path,
    render: Render,
    problems: list[Problem],
    invalid: set[tuple[str, str]] | None = None,
) -> list[Document]:
    """Read and validate every resource document under ``config_dir``.

    ``invalid`` receives (kind, name key) of each document that failed, so that
    references to it are not reported as dangling as well.
    """
    documents: list[Document] = []
    for path in resource_files(config_dir):
        display = display_path(path)
        for raw in read_stream(path, display, render, problems):
            document = _validate(raw, problems)
            # Read from the raw data, so that a type error elsewhere in the
            # document does not hide these.
            numbers = _number_problems(raw, problems)
            if document is not None:
                document.numbers = numbers
                document.item_marks = _rule_marks(document.model, raw)
                document.source = path
                document.index = raw.index
                document.node = None
                documents.append(document)
            elif invalid is not None:
                invalid.add(_identity(raw.data))
    return documents


def _number_problems(
    raw: YamlDocument, problems: list[Problem]
) -> frozenset[models.FieldPath]:
    """Report condition values written as numbers whose text is not the number.

    A condition compares with column text, so `010` (read as 8) or `1.10`
    (read as 1.1) would silently never match what the user wrote.
    """
    flagged: set[models.FieldPath] = set()
    for path, value in _condition_values(raw.data):
        items = list(enumerate(value)) if isinstance(value, list) else [(-1, value)]
        for position, item in items:
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            item_path = path if position < 0 else (*path, position)
            node = node_at(raw.node, item_path)
            text = node.value
            if node.tag in (INT_TAG, FLOAT_TAG) and str(item) != text:
                message = f"`{text}` is read as the number {item}; quote it: '{text}'"
                problems.append(problem_at(raw.file, node, message))
                flagged.add(item_path)
    return frozenset(flagged)


def _condition_values(data: Any) -> Iterator[tuple[models.FieldPath, Any]]:
    """Yield the path and value of every condition value of a Rule or SiteTemplate."""
    if not isinstance(data, dict):
        return
    bodies: list[tuple[models.FieldPath, Any]] = []
    if data.get("kind") == "Rule":
        bodies = [((), data)]
    elif data.get("kind") == "SiteTemplate" and isinstance(data.get("rules"), list):
        bodies = [(("rules", index), body) for index, body in enumerate(data["rules"])]
    for base, body in bodies:
        conditions = body.get("conditions") if isinstance(body, dict) else None
        if not isinstance(conditions, list):
            continue
        for index, condition in enumerate(conditions):
            if isinstance(condition, dict) and "value" in condition:
                yield (*base, "conditions", index, "value"), condition["value"]


def _rule_marks(instance: BaseModel, raw: YamlDocument) -> tuple[tuple[int, int], ...]:
    if not isinstance(instance, models.SiteTemplate):
        return ()
    marks = []
    for index in range(len(instance.rules)):
        mark = node_at(raw.node, ("rules", index)).start_mark
        marks.append((mark.line + 1, mark.column + 1))
    return tuple(marks)


def _identity(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return ("", "")
    kind, name = data.get("kind"), data.get("name")
    if not isinstance(kind, str) or not isinstance(name, str):
        return ("", "")
    return (kind, name_key(name))


def _validate(raw: YamlDocument, problems: list[Problem]) -> Document | None:
    data = raw.data
    if not isinstance(data, dict):
        problems.append(
            problem_at(raw.file, raw.node, "a document must be a mapping with a 'kind'")
        )
        return None
    kind = data.get("kind")
    model = MODEL_BY_KIND.get(kind) if isinstance(kind, str) else None
    if model is None:
        problems.append(_kind_problem(raw, kind))
        return None
    try:
        instance = model.model_validate(data, context=VALIDATION_CONTEXT)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, model, raw))
        return None
    for path, message in _cross_field_problems(instance):
        problems.append(problem_at(raw.file, node_at(raw.node, path), message))
    name = str(data.get("name", ""))
    return Document(str(kind), name, raw.file, raw.line, raw.column, instance, raw.node)


def _cross_field_problems(instance: BaseModel) -> list[tuple[models.FieldPath, str]]:
    if isinstance(instance, models.Site):
        return models.site_problems(instance)
    if isinstance(instance, models.Rule):
        return models.rule_body_problems(instance)
    if isinstance(instance, models.SiteTemplate):
        return [
            (("rules", index, *path), message)
            for index, body in enumerate(instance.rules)
            for path, message in models.rule_body_problems(body)
        ]
    return []


def _kind_problem(raw: YamlDocument, kind: object) -> Problem:
    kinds = ", ".join(MODEL_BY_KIND)
    if kind is None:
        return problem_at(
            raw.file, raw.node, f"missing required field 'kind' (one of: {kinds})"
        )
    node = node_at(raw.node, ("kind",))
    if not isinstance(kind, str):
        return problem_at(raw.file, node, f"'kind' must be one of: {kinds}")
    hint = suggest(kind, list(MODEL_BY_KIND))
    if "did you mean" not in hint:
        hint = ""
    return problem_at(
        raw.file, node, f"unknown kind '{kind}'{hint}; expected one of: {kinds}"
    )
