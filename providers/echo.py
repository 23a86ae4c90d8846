"""A deterministic built-in model: it answers by repeating the last user message.

Used by tests, demos and the benchmark. It streams word by word with a configurable delay so
that concurrency, reloads and stop can be watched, and reports exact usage.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx

from providers.base import (
    MAX_TOKENS,
    TEMPERATURE,
    ChatRequest,
    Event,
    Finish,
    Param,
    Provider,
    TextDelta,
    Usage,
)

DELAY_MS = Param(
    "delay_ms", "Delay per word (ms)", "int", "Pause between streamed words.", 0, 2000, 20
)
REPEAT = Param("repeat", "Repeat", "int", "How many times to repeat the prompt.", 1, 200, 1)

_WORDS = re.compile(r"\S+\s*|\s+")


def count_tokens(text: str) -> int:
    return len(_WORDS.findall(text))


class Echo(Provider):
    name = "echo"
    display_name = "Echo"
    needs_key = False
    params = (TEMPERATURE, MAX_TOKENS, DELAY_MS, REPEAT)
    supports_images = True

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[Event]:
        params = request.params
        prompt = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
        turns = sum(1 for m in request.messages if m.role == "user")
        text = f"Echo #{turns}: " + " ".join([prompt] * int(params.get("repeat", 1)))
        delay = int(params.get("delay_ms", DELAY_MS.default)) / 1000
        limit = params.get("max_tokens")
        words = _WORDS.findall(text)
        reason = "stop"
        if limit is not None and len(words) > limit:
            words, reason = words[:limit], "length"
        for index, word in enumerate(words):
            if delay and index:
                await asyncio.sleep(delay)
            yield TextDelta(word)
        input_tokens = sum(count_tokens(m.text) for m in request.messages)
        yield Usage(input_tokens=input_tokens, output_tokens=len(words))
        yield Finish(reason)
