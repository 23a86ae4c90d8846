"""One Server-Sent Events reader for every SSE-speaking provider.

Lenient on purpose (see PROVIDERS.md): ``data:`` with or without a space, comment lines
(``: keep-alive``, ``:HTTP_STATUS/200``) ignored, multi-line data joined with ``\\n``,
``\\r\\n`` or ``\\n`` line ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from providers.base import ProviderError, ReadLimits, too_long_line
from providers.reading import lines


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str
    id: str = ""


async def iter_sse(
    response: httpx.Response, limits: ReadLimits | None = None, provider: str = "The server"
) -> AsyncIterator[SSEEvent]:
    """Yield the events of an SSE body as they arrive, its lines read within ``limits``
    (:func:`providers.reading.lines`; ``provider`` names the server in their sentences).

    One event's data lines are held until the empty line that ends it, so they are bounded
    too: an event's data holds at most ``limits.line_bytes`` characters in all."""
    limits = limits or ReadLimits()
    async for event in iter_sse_lines(lines(response, limits, provider), limits, provider):
        yield event


async def read_rest(events: AsyncIterator[Any], seconds: float = 0.5) -> None:
    """Read what is left of a body whose answer has ended (``[DONE]``, ``message_stop``,
    ``is_end``, ``done``), up to its end. A body read to its end lets httpx keep the
    connection for the next call: a TCP and a TLS handshake saved per answer (left unread,
    the connection is closed). A server that goes on sending or keeps the stream open is
    left after ``seconds`` or past a bound, and its connection closed."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError, ProviderError):
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass


async def iter_sse_lines(
    lines: AsyncIterator[str], limits: ReadLimits | None = None, provider: str = "The server"
) -> AsyncIterator[SSEEvent]:
    limit = (limits or ReadLimits()).line_bytes
    event, event_id = "", ""
    data: list[str] = []
    held = 0  # characters in ``data``
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or event:
                yield SSEEvent(event or "message", "\n".join(data), event_id)
            event, data, held = "", [], 0
            continue
        if line.startswith(":"):
            continue
        if line.startswith("{"):
            # A bare JSON line outside SSE framing (Qianfan v1 errors, some gateways).
            yield SSEEvent("message", line, event_id)
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            held += len(value) + 1
            if held > limit:
                raise too_long_line(provider, limits or ReadLimits())
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value
    if data or event:
        yield SSEEvent(event or "message", "\n".join(data), event_id)
