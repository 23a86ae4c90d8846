"""Tools and images on a turn, the catalog's capabilities checked before any call, and the
cost of an answer from the catalog's prices."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from playground.attachments import AttachmentError, parse_tools
from playground.models import CatalogEntry, Response, Status, Turn
from playground.templatetags.playground import money
from tests.playground.helpers import run_turn, send_form

HTMX = {"HTTP_HX_REQUEST": "true"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_tool_definitions_in_three_shapes_are_read_alike() -> None:
    bare = {"name": "a", "description": "d", "parameters": {"type": "object"}}
    anthropic = {"name": "b", "input_schema": {"type": "object", "properties": {}}}
    tools = parse_tools(json.dumps([WEATHER, bare, anthropic]))
    assert [t["name"] for t in tools] == ["get_weather", "a", "b"]
    assert tools[0]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert tools[2]["parameters"] == {"type": "object", "properties": {}}
    assert parse_tools("  ") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[{"name": "x",}]', "not valid JSON (line 1, column 15)"),
        ('[{"name": "bad name"}]', "needs a name of letters"),
        ('[{"name": "x", "parameters": {"type": "string"}}]', "must be a JSON Schema object"),
        ('[{"name": "x"}, {"name": "x"}]', "defined twice"),
        ("[1]", "Tool 1 is not a JSON object"),
    ],
)
def test_bad_tool_definitions_are_refused_with_a_sentence(text: str, says: str) -> None:
    with pytest.raises(AttachmentError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_tools(text)


@pytest.mark.django_db
def test_a_model_without_tools_or_vision_says_so_before_the_call(owner_client: Any) -> None:
    form = send_form("Use a tool", panes=[("local:smollm2", {}), ("echo", {})])
    form["tools"] = json.dumps([WEATHER])
    form["images"] = SimpleUploadedFile("cat.png", PNG, content_type="image/png")
    response = owner_client.post(reverse("send_new"), form, **HTMX)
    body = response.content.decode()
    assert "Pane 1: Local · SmolLM2-135M cannot take images." in body
    assert "Pane 1: Local · SmolLM2-135M cannot call tools." in body
    assert "Pane 2" not in body
    assert Turn.objects.count() == 0 and Response.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.txt", b"hello", "notes.txt is not a PNG, JPEG, GIF or WebP image."),
        ("big.png", PNG + b"\x00" * (5 * 1024 * 1024), "big.png is larger than 5 MB."),
    ],
)
def test_a_bad_upload_is_refused(owner_client: Any, name: str, data: bytes, says: str) -> None:
    form = send_form("Look", panes=[("echo", {})])
    form["images"] = SimpleUploadedFile(name, data)
    body = owner_client.post(reverse("send_new"), form, **HTMX).content.decode()
    assert says in body
    assert Turn.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_context")
async def test_tools_and_images_reach_the_model_and_its_tool_call_is_shown(
    owner: Any, owner_client: Any
) -> None:
    form = send_form("Weather in Oslo?", panes=[("echo", {"delay_ms": 0})])
    form["tools"] = json.dumps([WEATHER])
    form["images"] = SimpleUploadedFile("cat.png", PNG)
    form["image_urls"] = "https://example.com/dog.jpg"
    response = await sync_to_async(owner_client.post)(reverse("send_new"), form, **HTMX)
    assert response.status_code == 200, response.content
    turn = await Turn.objects.aget()
    assert [t["name"] for t in turn.tools] == ["get_weather"]
    assert turn.images[0] == {"url": "https://example.com/dog.jpg"}
    assert turn.images[1]["mime_type"] == "image/png"

    await run_turn(turn.pk)

    row = await Response.objects.aget()
    assert row.status == Status.DONE
    assert row.text == "Echo #1: Weather in Oslo? [2 images]"
    assert row.finish_reason == "tool_calls"
    assert row.tool_calls == [
        {
            "id": "call_echo_1",
            "name": "get_weather",
            "arguments": json.dumps({"prompt": "Weather in Oslo?"}),
        }
    ]
    page = (await sync_to_async(owner_client.get)(f"/s/{turn.session_id}/")).content.decode()
    assert "Tool call: get_weather" in page
    assert "&quot;prompt&quot;: &quot;Weather in Oslo?&quot;" in page  # formatted JSON
    assert "2 images · tools: get_weather" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_context")
async def test_the_cost_of_an_answer_comes_from_the_catalog_prices(
    owner: Any, owner_client: Any
) -> None:
    await CatalogEntry.objects.filter(key="echo").aupdate(
        input_price=Decimal("2.50"), output_price=Decimal("10"), currency="USD"
    )
    form = send_form("one two three", panes=[("echo", {"delay_ms": 0})])
    await sync_to_async(owner_client.post)(reverse("send_new"), form, **HTMX)
    turn = await Turn.objects.aget()
    await run_turn(turn.pk)
    row = await Response.objects.aget()
    # Echo reports exact usage: 3 input tokens, 5 output ("Echo #1: one two three").
    assert (row.input_tokens, row.output_tokens, row.usage_estimated) == (3, 5, False)
    assert row.cost == Decimal("0.0000575")
    assert row.cost_currency == "USD"
    page = (await sync_to_async(owner_client.get)(f"/s/{turn.session_id}/")).content.decode()
    assert "$0.000058" in page


def test_money_is_readable() -> None:
    assert money(Decimal("0"), "USD") == "$0"
    assert money(Decimal("0.0000575"), "USD") == "$0.000058"
    assert money(Decimal("0.0123456"), "CNY") == "¥0.0123"
    assert money(Decimal("3.5"), "EUR") == "€3.50"
    assert money(None, "USD") == ""
