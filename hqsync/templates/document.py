"""Site template files: write one as YAML, read one back strictly, write atomically.

A template file contains one ``SiteTemplate`` document. The hqsync version that
wrote it is recorded in a leading comment for people. Compatibility is
decided by ``format_version`` alone, because the file is also a configuration
document that the loader validates, and that loader rejects unknown fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hqsync.config.files import (
    MAX_TEMPLATE_FILE_BYTES,
    FileReadError,
    read_limited,
)
from hqsync.config.messages import validation_problems
from hqsync.config.models import SiteTemplate
from hqsync.config.render import Renderer, literal_data
from hqsync.config.yamlload import YamlDocument, problem_at, read_text
from hqsync.errors import ConfigError, Problem, TemplateError

SUPPORTED_FORMAT_VERSIONS = (1,)
"""The ``format_version`` values this hqsync reads and writes."""

FORMAT_VERSION = SUPPORTED_FORMAT_VERSIONS[-1]


def dump_documents(documents: list[dict[str, Any]], header: str = "") -> str:
    """Serialise documents as a YAML stream, keys in the order given."""
    text = yaml.safe_dump_all(
        documents, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return header + text


def template_data(template: SiteTemplate) -> dict[str, Any]:
    """Return a template as plain data, defaults left out and Jinja2 text escaped."""
    data = template.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    ordered: dict[str, Any] = {
        "kind": "SiteTemplate",
        "name": template.name,
        "format_version": template.format_version,
    }
    ordered.update((key, value) for key, value in data.items() if key not in ordered)
    escaped: dict[str, Any] = literal_data(ordered)
    return escaped


def read_template(
    path: Path,
    display: str,
    variables: Mapping[str, Any],
    environ: Mapping[str, str],
) -> SiteTemplate:
    """Read a template file rendered as the loader would; raise on any problem.

    Raises TemplateError for a file that is not one SiteTemplate document or
    has an unsupported ``format_version``, and ConfigError (with file, line
    and column) for unknown fields and invalid values.
    """
    try:
        text = read_limited(path, MAX_TEMPLATE_FILE_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{display}: not UTF-8 text ({exc.reason})") from None
    except FileNotFoundError as exc:
        raise TemplateError(f"cannot read {display}: {exc.strerror}") from None
    except FileReadError as exc:
        raise TemplateError(f"cannot read {display}: {exc}") from None
    problems: list[Problem] = []
    renderer = Renderer(variables, environ)
    raws = list(read_text(text, display, renderer.render, problems))
    if problems:
        raise ConfigError(problems)
    raw = _single_template(raws, display)
    _check_format_version(raw, display)
    try:
        return SiteTemplate.model_validate(raw.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, SiteTemplate, raw)) from None


def _single_template(raws: list[YamlDocument], display: str) -> YamlDocument:
    if len(raws) != 1:
        raise TemplateError(
            f"{display}: a site template file must contain exactly one document, "
            f"found {len(raws)}"
        )
    raw = raws[0]
    kind = raw.data.get("kind") if isinstance(raw.data, dict) else None
    if kind != "SiteTemplate":
        where = problem_at(display, raw.node, "")
        raise TemplateError(
            f"{where.file}:{where.line}:{where.column}: expected a document of "
            f"kind SiteTemplate, found {kind!r}"
        )
    return raw


def _check_format_version(raw: YamlDocument, display: str) -> None:
    version = raw.data.get("format_version", FORMAT_VERSION)
    if version in SUPPORTED_FORMAT_VERSIONS and type(version) is int:
        return
    supported = ", ".join(str(number) for number in SUPPORTED_FORMAT_VERSIONS)
    raise TemplateError(
        f"{display}: format_version {version!r} is not supported by this hqsync "
        f"(it reads format_version {supported}); export the template again with "
        "this hqsync version, or upgrade hqsync"
    )
