""" "Test connection" makes the cheapest call in the worker and answers with one sentence."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async

from playground.catalog import catalog
from playground.worker.connection_check import run_check
from tests.playground.helpers import sse_chunks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker_context")]
URL = "https://api.openai.com/v1/chat/completions"


@respx.mock
async def test_a_working_key_is_reported_with_the_time_it_took(settings: Any, aredis: Any) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": "sk-test-connection-0000000000"}
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=b"".join(sse_chunks(["Hi"], usage=True)))
    )
    await run_check("openai:gpt-4.1-mini", "pg:conn:one")
    [sentence] = await aredis.lrange("pg:conn:one", 0, -1)
    assert sentence.decode().startswith("OpenAI · GPT-4.1 mini: connected; the model answered in")
    body = json.loads(route.calls.last.request.content)
    assert body["max_completion_tokens"] == 1  # the cheapest call
    # The catalog's list in admin shows it as the entry's last test.
    record = json.loads(await aredis.get("pg:conn:catalog:openai:gpt-4.1-mini"))
    assert record["sentence"] == sentence.decode()
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


@respx.mock
async def test_a_refused_key_says_so_without_the_key(settings: Any, aredis: Any) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": "sk-test-refused-1111111111111"}
    respx.post(URL).mock(
        return_value=httpx.Response(
            401, json={"error": {"message": "Incorrect API key provided: sk-test-***1111"}}
        )
    )
    await run_check("openai:gpt-4.1-mini", "pg:conn:two")
    [sentence] = await aredis.lrange("pg:conn:two", 0, -1)
    text = sentence.decode()
    assert text.startswith("OpenAI · GPT-4.1 mini: failed — OpenAI rejected the API key (401)")
    assert "sk-test-refused" not in text


async def test_an_unknown_model_is_answered_too(aredis: Any) -> None:
    assert "nope" not in await sync_to_async(catalog)()
    await run_check("nope", "pg:conn:three")
    assert (await aredis.lrange("pg:conn:three", 0, -1)) == [
        b"nope: not in the catalog (disabled?)."
    ]
