"""What Send reads from a person's form, under attack and under fuzzing: deeply nested tool
JSON is refused with a sentence (it was a RecursionError, and a 500), and no form, however
odd, makes Send fail: bad input gets a sentence in the errors box and saves nothing. Every
model's parameters are cleaned or refused with a sentence, whatever they hold."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import QueryDict
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.attachments import AttachmentError, parse_tools
from playground.compose import read_compose
from playground.models import Response, Session, Turn
from providers.base import ParamError
from providers.registry import PROVIDERS, provider_class
from tests.playground.helpers import send_form

HTMX = {"HTTP_HX_REQUEST": "true"}
NESTED = (
    "The tool definitions are nested more than 32 levels deep; flatten their parameters' schemas."
)


def nested_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tools", ["[" * 60_000, "[" * 30_000 + "]" * 30_000, '{"a": ' * 9_000 + "1" + "}" * 9_000]
)
def test_deeply_nested_tool_json_is_refused_with_a_sentence_and_nothing_saved(
    owner_client: Any, tools: str
) -> None:
    form = send_form("Use a tool", panes=[("echo", {})])
    form["tools"] = tools

    response = owner_client.post(reverse("send_new"), form, **HTMX)

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#compose-errors"
    assert NESTED.replace("'", "&#x27;") in response.content.decode()
    assert (Session.objects.count(), Turn.objects.count(), Response.objects.count()) == (0, 0, 0)


def test_a_schema_nested_deeper_than_the_bound_is_refused_and_one_within_it_read() -> None:
    # The list, the tool, its parameters: three levels before the schema's own.
    deep = [{"name": "deep", "parameters": nested_schema(16)}]  # 2 levels per schema level
    with pytest.raises(AttachmentError) as refused:
        parse_tools(json.dumps(deep))
    assert str(refused.value) == NESTED
    fine = [{"name": "fine", "parameters": nested_schema(14)}]
    assert parse_tools(json.dumps(fine))[0]["name"] == "fine"
    # Brackets inside strings are text, not nesting.
    quoted = [{"name": "q", "description": "[" * 1000 + '\\"{{{'}]
    assert parse_tools(json.dumps(quoted))[0]["description"].startswith("[[[")


# --------------------------------------------------------------------------- fuzzing

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMES = [
    "prompt", "system_prompt", "pane", "pane", "pane-0-model", "pane-1-model",
    "pane-0-p-temperature", "pane-0-p-max_tokens", "pane-0-p-top_p", "pane-0-p-stop",
    "pane-0-p-seed", "pane-0-p-delay_ms", "pane-1-p-temperature", "pane-0-credential",
    "pane-0-ask", "asking", "tools", "image_urls", "context_policy", "same_params",
]  # fmt: skip
ODD_VALUES = st.sampled_from(
    [
        "", " ", "0", "1", "-1", "nan", "inf", "-inf", "1e999", "9" * 5000, "0x10", "1_0",
        "٣", "echo", "local:smollm2", "mine:1:x", "mine:abc", "on", "all", "chosen", "own",
        "[" * 5000, '[{"name": "t"}]', "https://example.com/a.png", "javascript:alert(1)",
        "\x00", "\ud7ff", "a\nb\nc\nd\ne",
    ]
)  # fmt: skip
forms = st.lists(
    st.tuples(st.sampled_from(NAMES) | st.text(max_size=12), ODD_VALUES | st.text(max_size=40)),
    max_size=14,
)


def query(pairs: list[tuple[str, str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in pairs:
        data.appendlist(name, value)
    return data


@pytest.mark.django_db
@FUZZ
@given(pairs=forms)
def test_the_send_form_reader_never_fails_and_says_what_is_wrong(
    owner: Any, pairs: list[tuple[str, str]]
) -> None:
    compose = read_compose(query(pairs), None, owner)
    assert all(isinstance(e, str) and e.strip() for e in compose.errors)
    if not compose.errors:
        assert compose.prompt.strip() and compose.panes
        assert all(p.model is not None for p in compose.panes)


@pytest.mark.django_db
@FUZZ
@given(pairs=forms)
def test_send_answers_any_form_with_a_sentence_or_a_turn(
    owner_client: Any, clean_redis: Any, pairs: list[tuple[str, str]]
) -> None:
    turns = Turn.objects.count()
    response = owner_client.post(reverse("send_new"), query(pairs), **HTMX)
    assert response.status_code == 200
    if "HX-Redirect" in response:
        assert Turn.objects.count() == turns + 1
    else:
        assert response["HX-Retarget"] == "#compose-errors"
        assert "<li" in response.content.decode()
        assert Turn.objects.count() == turns


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FUZZ
@given(
    values=st.dictionaries(
        st.sampled_from(["temperature", "top_p", "max_tokens", "top_k", "seed", "stop"])
        | st.text(max_size=10),
        ODD_VALUES | st.text(max_size=20) | st.floats() | st.integers() | st.lists(st.text()),
        max_size=5,
    )
)
def test_a_models_parameters_are_cleaned_or_refused_with_a_sentence(
    provider: str, values: dict[str, Any]
) -> None:
    cls = provider_class(provider)
    try:
        cleaned = cls.clean_params(values)
        cls.check_params("some-model", cleaned)
    except ParamError as error:
        assert str(error).strip()
