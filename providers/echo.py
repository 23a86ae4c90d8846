"""A deterministic built-in model: it answers by repeating the last user message.

Used by tests, demos and the benchmark. It streams word by word with a configurable delay so
that concurrency, reloads and stop can be watched, and reports exact usage. Given images, it
says how many it got, and of each video and recording what it was given (its type and size,
its frames, or its address), so the media path can be tried with no key; given tools, it
calls the first one with the prompt as its argument.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx

from providers import base
from providers.base import ChatRequest

DELAY_MS = base.Param(
    "delay_ms", "Delay per word (ms)", "int", "Pause between streamed words.", 0, 2000, 20
)
REPEAT = base.Param("repeat", "Repeat", "int", "How many times to repeat the prompt.", 1, 200, 1)

_WORDS = re.compile(r"\S+\s*|\s+")


def count_tokens(text: str) -> int:
    return len(_WORDS.findall(text))


def described(part: base.Part) -> str:
    """What Echo says of a video or a recording it was given; "" for any other part."""
    if isinstance(part, base.VideoPart):
        if part.frames:
            return f"video: {len(part.frames)} frame{'s' if len(part.frames) != 1 else ''}"
        kind, encoding = "video", part.mime_type.rpartition("/")[2]
    elif isinstance(part, base.AudioPart):
        kind, encoding = "recording", part.format
    else:
        return ""
    if part.url:
        return f"{kind}: {part.url}"
    size_kb = max(1, round(len(part.data) * 3 / 4 / 1024))
    return f"{kind}: {encoding.upper()}, {size_kb} KB"


class Echo(base.Provider):
    name = "echo"
    display_name = "Echo"
    needs_key = False
    calls_out = False  # its base URL only names a slot to wait for
    params = (base.TEMPERATURE, base.MAX_TOKENS, DELAY_MS, REPEAT)
    supports_images = True
    supports_tools = True
    video_forms = frozenset({"file", "url", "frames"})
    audio_forms = frozenset({"file", "url"})

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[base.Event]:
        params = request.params
        last = next((m for m in reversed(request.messages) if m.role == "user"), None)
        prompt = last.text if last else ""
        images = (
            0
            if last is None or isinstance(last.content, str)
            else sum(isinstance(p, base.ImagePart) for p in last.content)
        )
        turns = sum(1 for m in request.messages if m.role == "user")
        text = f"Echo #{turns}: " + " ".join([prompt] * int(params.get("repeat", 1)))
        if images:
            text += f" [{images} image{'s' if images != 1 else ''}]"
        if last is not None and not isinstance(last.content, str):
            text += "".join(f" [{said}]" for said in map(described, last.content) if said)
        delay = int(params.get("delay_ms", DELAY_MS.default)) / 1000
        limit = params.get("max_tokens")
        words = _WORDS.findall(text)
        reason = "stop"
        if limit is not None and len(words) > limit:
            words, reason = words[:limit], "length"
        for index, word in enumerate(words):
            if delay and index:
                await asyncio.sleep(delay)
            yield base.TextDelta(word)
        if request.tools and reason == "stop":
            tool = request.tools[0]
            yield base.ToolCall("call_echo_1", tool.name, json.dumps({"prompt": prompt}))
            reason = "tool_calls"
        input_tokens = sum(count_tokens(m.text) for m in request.messages)
        yield base.Usage(input_tokens=input_tokens, output_tokens=len(words))
        yield base.Finish(reason)
