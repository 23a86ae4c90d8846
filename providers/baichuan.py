"""Baichuan (PROVIDERS.md §9): the OpenAI Chat Completions format with a bearer key, and
Baichuan's own sampling bounds and web-search switch."""

from __future__ import annotations

import dataclasses

import httpx

from providers import base
from providers.base import ChatRequest, ProviderError
from providers.errors import redact
from providers.http import obj
from providers.openai_compat import OpenAIChat

TOP_K = base.Param(
    "top_k",
    "Top K",
    "int",
    "Sample only from the K likeliest tokens (0 turns it off; at most 20).",
    0,
    20,
)
WITH_SEARCH_ENHANCE = base.Param(
    "with_search_enhance",
    "Search enhancement",
    "bool",
    "Let the model search the web and cite what it finds.",
)


class Baichuan(OpenAIChat):
    name = "baichuan"
    display_name = "Baichuan"
    default_base_url = "https://api.baichuan-ai.com/v1"
    key_env = "BAICHUAN_API_KEY"
    supports_tools = True  # OpenAI function format, per LangChain's client (§9)
    # Images, stop and seed are UNCONFIRMED (§9): not offered.
    # UNCONFIRMED whether Baichuan accepts stream_options; usage is said to come on the last
    # chunk without it, so it is not sent (an unknown field could cost a 400).
    send_stream_options = False
    # Bounds from Baichuan's API reference: temperature [0, 1], top_p [0, 1) (a slider
    # can't say "below 1", so 0.99), max_tokens up to 32000 (some models stop lower; the
    # API then says so).
    params = (
        dataclasses.replace(base.TEMPERATURE, maximum=1),
        dataclasses.replace(base.TOP_P, maximum=0.99),
        TOP_K,
        dataclasses.replace(base.MAX_TOKENS, maximum=32000),
        WITH_SEARCH_ENHANCE,
    )

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        error, decoded = await self.error_and_body(response, request)
        # The error body's shape is UNCONFIRMED (§9): OpenAI's {"error": {…}} is read by the
        # shared code; a bare {"code", "msg"} (Baichuan's older API) is read here.
        body = obj(decoded)
        words = body.get("msg")
        if "error" in body or "message" in body or not isinstance(words, str) or not words:
            return error
        key = request.credentials.api_key
        return base.error_for_status(
            self.display_name, response.status_code, redact(words, key), response.headers
        )
