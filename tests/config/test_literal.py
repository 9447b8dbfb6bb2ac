"""literal_text: text written into configuration loads back unchanged."""

from __future__ import annotations

import pytest

from hqsync.config.render import Renderer, literal_data, literal_text

TEXTS = [
    "plain text",
    "{{ vars.x }}",
    "{% if %}",
    "{# note #}",
    "{{{",
    "a }} b {{",
    "{{ x }} endraw",
    "{% endraw %}{{ y }}",
    "{% raw %}{{ z }}{% endraw %}",
    "endraw {#",
    "{{ env('SF_CLIENT_SECRET') }}",
]


@pytest.mark.parametrize("text", TEXTS)
def test_literal_text_renders_unchanged(text: str) -> None:
    renderer = Renderer({"x": "rendered"}, {"SF_CLIENT_SECRET": "CANARY-secret"})

    assert renderer.render(literal_text(text)) == text


def test_literal_text_plain_unchanged() -> None:
    assert literal_text("no markers } {") == "no markers } {"


def test_literal_data_leaves_keys() -> None:
    data = {"{{ key }}": ["{{ a }}", 1, {"b": "{# c"}]}

    assert literal_data(data) == {
        "{{ key }}": [
            "{% raw %}{{ a }}{% endraw %}",
            1,
            {"b": "{% raw %}{# c{% endraw %}"},
        ]
    }
