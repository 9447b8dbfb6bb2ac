"""A Jinja2 sandbox that limits how large a rendered value can grow.

Jinja2's ``SandboxedEnvironment`` blocks unsafe attributes but lets
``'x' * 10**9`` or ``'x'|center(10**9)`` allocate gigabytes. This sandbox
checks the size of a result before each operation that can multiply its
input (operators, width arguments, joins). It also counts what filters and
methods return against a budget per rendered value, and rejects the tags
that buffer output where these checks cannot see it.

NOTE: the limits bound memory, not time. Nested loops over ``range`` (up to
100,000 items each) can still keep one render busy for minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from hqsync.config.yamlload import RenderError

MAX_LENGTH = 100_000
"""Maximum characters in one string, or items in one list, that a template makes."""

MAX_PRODUCED = 2_000_000
"""Maximum characters and items that filters, methods and operators may return,
in total, while rendering one value."""

MAX_INTEGER_BITS = 10_000
"""Maximum size in bits of an integer a template computes (about 3,000 digits)."""

_BUFFERING_TAGS: dict[type[nodes.Node], str] = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.AssignBlock: "{% set %}...{% endset %}",
    nodes.FilterBlock: "{% filter %}",
}
"""Tags that collect output in memory before the size checks see it."""

_REMOVED_GLOBALS = ("lipsum", "namespace")
"""``lipsum(n)`` makes n paragraphs; a namespace lets a loop double a string."""

_PRINTF_FIELD = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?"
)
_FORMAT_FIELD = re.compile(r"\{[^{}]*:(?P<spec>[^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class TemplateLimitError(RenderError):
    """A template would make a value larger than a sandbox limit."""


def _size(value: object) -> int:
    if isinstance(value, str | bytes | list | tuple | dict | set):
        return len(value)
    return 1


def _weight(value: object, known: dict[int, int] | None = None) -> int:
    """Count the items of a sequence and the characters of the strings inside it.

    A list of 100,000 references to one 100,000-character string is short,
    but printing it or passing it to ``tojson`` makes 10**10 characters.
    """
    known = {} if known is None else known
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, list | tuple | dict):
        return 0  # counted as an item of its container
    cached = known.get(id(value))
    if cached is not None:
        return cached
    known[id(value)] = len(value)  # a list that contains itself counts once
    items = list(value.items()) if isinstance(value, dict) else value
    total = len(value)
    for item in items:
        total += _weight(item, known)
    known[id(value)] = total
    return total


def _limit(what: str, size: int, maximum: int = MAX_LENGTH) -> None:
    if size > maximum:
        raise TemplateLimitError(f"{what} ({size}) is over the limit of {maximum}")


def check_printf(template: str) -> None:
    """Reject a ``%`` format whose width or precision is ``*`` or over the limit."""
    for match in _PRINTF_FIELD.finditer(template):
        for number in (match.group("width"), match.group("precision")):
            if number == "*":
                raise TemplateLimitError(
                    "a '%*' width or precision from an argument is not allowed"
                )
            if number is not None:
                _limit("a '%' format width", int(number))


def check_format(template: str) -> None:
    """Reject a ``str.format`` field whose width is nested or over the limit."""
    for match in _FORMAT_FIELD.finditer(template):
        spec = match.group("spec")
        if "{" in spec:
            raise TemplateLimitError(
                "a format width from an argument ('{:{}}') is not allowed"
            )
        for number in re.findall(r"\d+", spec):
            _limit("a format width", int(number))


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Reject an operation whose result would exceed a size limit."""
    sequences = (str, bytes, list, tuple)
    if operator == "*":
        if isinstance(left, sequences) and isinstance(right, int):
            _limit("the size of the result of '*'", _weight(left) * right)
        elif isinstance(right, sequences) and isinstance(left, int):
            _limit("the size of the result of '*'", _weight(right) * left)
        elif isinstance(left, int) and isinstance(right, int):
            bits = left.bit_length() + right.bit_length()
            _limit("the size in bits of the integer from '*'", bits, MAX_INTEGER_BITS)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1:
            bits = (abs(left).bit_length() - 1) * right
            _limit("the size in bits of the integer from '**'", bits, MAX_INTEGER_BITS)
    elif operator == "+" and isinstance(left, sequences):
        if isinstance(right, sequences):
            _limit("the size of the result of '+'", _weight(left) + _weight(right))
    elif operator == "%" and isinstance(left, str):
        check_printf(left)


class LimitedEnvironment(SandboxedEnvironment):
    """A sandbox that checks the size of what templates build (see the module)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.produced = 0
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        prepares = _filter_checks()
        for name, function in list(self.filters.items()):
            self.filters[name] = self._counted(function, prepares.get(name))

    def start_value(self) -> None:
        """Reset the budget; call before rendering each value."""
        self.produced = 0

    def count(self, value: object) -> object:
        """Add ``value``'s size to the budget; raise when the budget is spent."""
        self.produced += _size(value)
        if self.produced > MAX_PRODUCED:
            raise TemplateLimitError(
                f"the template makes more than {MAX_PRODUCED} characters or items "
                "in total"
            )
        return value

    def concat(self, pieces: Iterable[str]) -> str:
        """Join buffered template output; raise once it passes the length limit."""
        collected: list[str] = []
        length = 0
        for piece in pieces:
            length += len(piece)
            _limit("the length of the rendered text", length)
            collected.append(piece)
        return "".join(collected)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Check the widths of a ``str.format`` template before it can be called."""
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            check_format(str(value.__self__))
        return wrapper

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        """Check an intercepted operator's result size, then apply it."""
        check_binop(operator, left, right)
        return self.count(super().call_binop(context, operator, left, right))

    def call(
        self,
        context: jinja2.runtime.Context,
        obj: Any,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Check the arguments of string methods that can grow text, then call."""
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            args = _checked_method_arguments(owner, obj.__name__, args)
        return self.count(super().call(context, obj, *args, **kwargs))

    def _counted(
        self, function: Callable[..., Any], prepare: Prepare | None
    ) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if prepare is not None:
                passed = _passed_arguments(args)
                args = (*args[:passed], *prepare(args[passed:], kwargs))
            return self.count(function(*args, **kwargs))

        # Jinja2 reads this marker to pass the environment or context first.
        marker = getattr(function, "jinja_pass_arg", None)
        if marker is not None:
            counted.jinja_pass_arg = marker  # type: ignore[attr-defined]
        return counted


def check_tags(template: nodes.Template) -> None:
    """Reject the tags that buffer output, and recursive loops."""
    for loop in template.find_all(nodes.For):
        if loop.recursive:
            raise RenderError("a recursive {% for %} loop is not allowed here")
    for node_type, tag in _BUFFERING_TAGS.items():
        if template.find(node_type) is not None:
            raise RenderError(f"{tag} is not allowed in a configuration value")


def generate_limited(
    template: jinja2.Template, context: dict[str, Any]
) -> Iterator[str]:
    """Yield the rendered pieces of ``template``; raise once they pass the limit."""
    length = 0
    for piece in template.generate(context):
        length += len(piece)
        _limit("the length of the rendered text", length)
        yield piece


def _passed_arguments(args: tuple[Any, ...]) -> int:
    # Filters marked pass_environment or pass_eval_context get that object first.
    passed = (jinja2.Environment, nodes.EvalContext, jinja2.runtime.Context)
    return 1 if args and isinstance(args[0], passed) else 0


def _checked_method_arguments(
    text: str, method: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    if method in _WIDTH_METHODS and args and isinstance(args[0], int):
        _limit(f"the width given to str.{method}()", args[0])
    elif method == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        _limit("the length of the result of str.expandtabs()", len(text) * max(tab, 1))
    elif method == "replace" and len(args) >= 2 and isinstance(args[1], str):
        _limit(
            "the length of the result of str.replace()",
            len(text) + (len(text) + 1) * len(args[1]),
        )
    elif method == "join" and args:
        items = _bounded_items(args[0], len(text))
        return (items, *args[1:])
    return args


def _bounded_items(iterable: Iterable[Any], separator: int) -> list[Any]:
    """Collect items to join, raising once their text would pass the limit."""
    items: list[Any] = []
    length = 0
    for item in iterable:
        length += len(str(item)) + separator
        _limit("the length of the joined text", length)
        items.append(item)
    return items


Prepare = Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]
"""Check a filter's arguments (context removed) and return them, maybe collected."""


def _width_check(position: int, name: str) -> Prepare:
    def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        value = args[position] if len(args) > position else kwargs.get(name)
        if isinstance(value, int):
            _limit(f"the '{name}' argument", value)
        elif isinstance(value, str):
            _limit(f"the length of the '{name}' argument", len(value))
        return args

    return prepare


def _printf_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if args and isinstance(args[0], str):
        check_printf(args[0])
    return args


def _replace_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    text = args[0] if args else None
    new = args[2] if len(args) > 2 else kwargs.get("new")
    if isinstance(text, str) and isinstance(new, str):
        _limit(
            "the length of the result of replace",
            len(text) + (len(text) + 1) * len(new),
        )
    return args


def _wordwrap_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring")
    if args and isinstance(args[0], str) and isinstance(wrap, str):
        _limit("the length of the result of wordwrap", len(args[0]) * (len(wrap) + 1))
    return args


def _join_collect(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not args or isinstance(args[0], str):
        return args
    separator = args[1] if len(args) > 1 else kwargs.get("d", "")
    items = _bounded_items(args[0], len(str(separator)))
    return (items, *args[1:])


def _sum_collect(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not args or isinstance(args[0], str):
        return args
    items: list[Any] = []
    total = 0
    for item in args[0]:
        total += _size(item)
        _limit("the length of the sum", total)
        items.append(item)
    return (items, *args[1:])


def _filter_checks() -> dict[str, Prepare]:
    return {
        "center": _width_check(1, "width"),
        "indent": _width_check(1, "width"),
        "slice": _width_check(1, "slices"),
        "tojson": _width_check(1, "indent"),
        "truncate": _width_check(3, "end"),
        "format": _printf_check,
        "replace": _replace_check,
        "wordwrap": _wordwrap_check,
        "join": _join_collect,
        "sum": _sum_collect,
    }
