"""Render string scalars as Jinja2 templates in a sandbox.

Rendering runs on values that YAML has already parsed, so a template can
produce text but never new keys, lists or documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jinja2

from hqsync.config.sandbox import (
    MAX_LENGTH,
    LimitedEnvironment,
    TemplateLimitError,
    check_tags,
    generate_limited,
)
from hqsync.config.yamlload import RenderError

_SIMPLE_EXPRESSION = re.compile(
    r"\{\{ ?(?:vars\.(?P<attribute>[A-Za-z_][A-Za-z0-9_]*)"
    r"|vars\[(?P<q1>['\"])(?P<key>[^'\"{}]*)(?P=q1)\]"
    r"|env\((?P<q2>['\"])(?P<env>[A-Za-z_][A-Za-z0-9_]*)(?P=q2)\)) ?\}\}"
)
"""A plain lookup: ``{{ vars.NAME }}``, ``{{ vars['NAME'] }}`` or ``{{ env('X') }}``."""


class Renderer:
    """Render template text with ``vars`` and ``env('NAME')``; undefined is an error."""

    def __init__(
        self, variables: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        self._environ = environ
        self._environment = LimitedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self._environment.globals["env"] = self._read_env
        self._context = {"vars": dict(variables)}
        # Many rules share the same template text; compile each text once.
        self._templates: dict[str, jinja2.Template | RenderError] = {}

    def _read_env(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        raise RenderError(
            f"environment variable {name} is not set (read by env('{name}'))"
        )

    def render(self, source: str) -> str:
        """Render ``source``; raise RenderError with a message naming the cause."""
        text = self._render(source)
        if len(text) > MAX_LENGTH:
            raise RenderError(
                f"template {_shorten(source)} renders {len(text)} characters; "
                f"the limit is {MAX_LENGTH}"
            )
        return text

    def _render(self, source: str) -> str:
        simple = self._render_simple(source)
        if simple is not None:
            return simple
        template = self._templates.get(source)
        if template is None:
            template = self._compile(source)
            self._templates[source] = template
        if isinstance(template, RenderError):
            raise template
        self._environment.start_value()
        try:
            return "".join(generate_limited(template, self._context))
        except TemplateLimitError as exc:
            raise RenderError(
                f"template {_shorten(source)} exceeds a size limit: {exc}"
            ) from None
        except RenderError:
            raise
        except jinja2.UndefinedError as exc:
            raise RenderError(self._undefined_message(source, exc)) from None
        except jinja2.TemplateError as exc:
            raise RenderError(f"template error in {_shorten(source)}: {exc}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise RenderError(f"template error in {_shorten(source)}: {exc}") from None
        except (RecursionError, MemoryError):
            raise RenderError(
                f"template {_shorten(source)} is too large to render"
            ) from None

    def _render_simple(self, source: str) -> str | None:
        """Render text whose only expressions are plain lookups, or return None.

        Compiling a Jinja2 template took about half a millisecond here, and a
        large configuration has thousands of distinct texts like
        ``{{ vars.host }}/x``. This renders those the same way without
        compiling. Anything else, including every error, goes through Jinja2.
        """
        parts: list[str] = []
        position = 0
        for match in _SIMPLE_EXPRESSION.finditer(source):
            value = self._lookup(match)
            if value is None:
                return None
            parts.append(source[position : match.start()])
            parts.append(value)
            position = match.end()
        parts.append(source[position:])
        text = "".join(parts[::2])
        if "{{" in text or "{%" in text or "{#" in text:
            return None
        return "".join(parts)

    def _lookup(self, match: re.Match[str]) -> str | None:
        name = match.group("attribute") or match.group("key")
        if name is not None:
            # Jinja2 resolves ``vars.items`` to the dict method, not the key.
            if match.group("attribute") and hasattr(dict, name):
                return None
            variables = self._context["vars"]
            if name not in variables:
                return None
            value = variables[name]
            return value if isinstance(value, str) else None
        return self._environ.get(match.group("env"))

    def _compile(self, source: str) -> jinja2.Template | RenderError:
        try:
            parsed = self._environment.parse(source)
            check_tags(parsed)
            return self._environment.from_string(parsed)
        except RenderError as exc:
            return RenderError(f"template {_shorten(source)}: {exc}")
        except jinja2.TemplateSyntaxError as exc:
            return RenderError(
                f"template syntax error in {_shorten(source)}: {exc.message}"
            )
        except RecursionError:
            return RenderError(f"template {_shorten(source)} is nested too deeply")

    def _undefined_message(self, source: str, exc: jinja2.UndefinedError) -> str:
        defined = ", ".join(sorted(self._context["vars"])) or "none"
        return (
            f"undefined template variable in {_shorten(source)}: {exc.message} "
            f"(variables defined for this instance: {defined})"
        )


def _shorten(source: str, limit: int = 80) -> str:
    """Quote template text for a message, cut to ``limit`` characters."""
    text = source if len(source) <= limit else source[: limit - 3] + "..."
    return repr(text)


_JINJA_MARKERS = ("{{", "{%", "{#")
_MARKER_START = re.compile(r"\{(?=[{%#])")


def literal_text(text: str) -> str:
    """Return template text that the loader renders back to ``text`` unchanged.

    Text with a Jinja2 marker is wrapped in ``{% raw %}...{% endraw %}``. Text
    that also contains ``endraw`` gets each marker's first brace written as
    the expression ``{{ '{' }}`` instead, because a raw block cannot hold it.
    """
    if not any(marker in text for marker in _JINJA_MARKERS):
        return text
    if "endraw" not in text:
        return "{% raw %}" + text + "{% endraw %}"
    return _MARKER_START.sub("{{ '{' }}", text)


def literal_data(value: Any) -> Any:
    """Apply :func:`literal_text` to every string in nested lists and mappings.

    Mapping keys are left alone because the loader never renders keys.
    """
    if isinstance(value, str):
        return literal_text(value)
    if isinstance(value, list):
        return [literal_data(item) for item in value]
    if isinstance(value, dict):
        return {key: literal_data(item) for key, item in value.items()}
    return value
