"""Reading an answer's body within its request's :class:`~providers.base.ReadLimits`.

Every byte an HTTP adapter reads from a provider comes through here: an error body
(:func:`read_capped`), a body read whole (:func:`read_whole`), or a stream's lines
(:func:`lines`). Each bound is checked as the bytes arrive, so what one answer holds in
memory is at most its bound and one read of the network, whatever the server sends; a
bound reached closes the connection (the body is left unread).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import cast

import httpx

from providers.base import ReadLimits, stalled, too_long_line

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_NEWLINE = re.compile(rb"\n")


async def read_capped(response: httpx.Response, limits: ReadLimits) -> bytes:
    """The first ``limits.error_body_bytes`` of ``response``'s body (an error's, read for
    its message), as much of it as came within ``limits.stall_seconds``; the rest is not
    read, and the connection is closed."""
    limit = limits.error_body_bytes
    kept: list[bytes] = []
    size = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limits.stall_seconds):
            async with aclosing(_body(response)) as chunks:
                async for chunk in chunks:
                    kept.append(chunk[: limit - size])
                    size += len(kept[-1])
                    if size >= limit:
                        break
    await response.aclose()
    return b"".join(kept)


async def read_whole(response: httpx.Response, limits: ReadLimits, provider: str) -> bytes:
    """A body read whole (one JSON answer or error), refused with :func:`too_long_line`'s
    sentence once it passes ``limits.line_bytes``."""
    kept = bytearray()
    async with aclosing(_chunks(response, limits, provider)) as chunks:
        async for chunk in chunks:
            kept += chunk
            if len(kept) > limits.line_bytes:
                raise too_long_line(provider, limits)
    return bytes(kept)


async def lines(
    response: httpx.Response,
    limits: ReadLimits | None = None,
    provider: str = "The server",
    *,
    newline_only: bool = False,
) -> AsyncIterator[str]:
    """The lines of a streamed body as they complete, without their line ends.

    Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` (SSE's rule), or with ``newline_only`` at
    ``\\n`` alone, a ``\\r`` before it dropped (NDJSON). Never at the other characters
    ``str.splitlines`` splits at (U+0085, U+2028), which JSON leaves unescaped inside
    strings. Each line is decoded whole, so a UTF-8 character cut between two reads comes
    out right. A line longer than ``limits.line_bytes`` raises :func:`too_long_line`'s
    error as soon as that many bytes have come without a line end; a silence longer than
    ``limits.stall_seconds`` raises :func:`stalled`'s.
    """
    limits = limits or ReadLimits()
    ends = _NEWLINE if newline_only else _LINE_ENDS
    pending = bytearray()
    after_cr = False  # the last read ended with "\r": a "\n" starting the next is its end
    async with aclosing(_chunks(response, limits, provider)) as chunks:
        async for chunk in chunks:
            start = 0
            if after_cr and chunk.startswith(b"\n"):
                start = 1
            after_cr = False
            for end in ends.finditer(chunk, start):
                line = chunk[start : end.start()]
                if pending:
                    line = bytes(pending) + line
                    pending.clear()
                if len(line) > limits.line_bytes:
                    raise too_long_line(provider, limits)
                if newline_only and line.endswith(b"\r"):
                    line = line[:-1]
                yield line.decode("utf-8", "replace")
                start = end.end()
            after_cr = not newline_only and chunk.endswith(b"\r")
            if len(pending) + len(chunk) - start > limits.line_bytes:
                raise too_long_line(provider, limits)
            pending += chunk[start:]
    line = bytes(pending)
    if newline_only and line.endswith(b"\r"):
        line = line[:-1]
    if line:  # the last line, without its line end
        yield line.decode("utf-8", "replace")


def _body(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body's reads (httpx's generator, typed as the one it is, to be closed)."""
    return cast(AsyncGenerator[bytes, None], response.aiter_bytes())


async def _chunks(
    response: httpx.Response, limits: ReadLimits, provider: str
) -> AsyncGenerator[bytes, None]:
    """The body's reads, each awaited at most ``limits.stall_seconds``."""
    async with aclosing(_body(response)) as chunks:
        while True:
            try:
                async with asyncio.timeout(limits.stall_seconds):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise stalled(provider, limits) from None
            yield chunk
