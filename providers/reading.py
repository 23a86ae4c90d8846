"""Reading an answer's body within its request's :class:`~providers.base.ReadLimits`.

Every byte an HTTP adapter reads from a provider comes through here: an error body
(:func:`read_capped`), a body read whole (:func:`read_whole`), or a stream's lines
(:func:`lines`). Each bound is checked as the bytes arrive, so what one answer holds in
memory is at most its bound and one read of the network, whatever the server sends; a
bound reached closes the connection (the body is left unread).

A compressed body is decoded here too, a piece of at most :data:`PIECE` bytes at a time
(:class:`Inflater`), so that the bounds count what it expands to as it expands. httpx's
own decoding (``Response.aiter_bytes``; httpx 0.28's ``_decoders.py``) inflates each read of
the network whole: ``zlib.decompressobj().decompress(data)`` without a ``max_length``, and
for ``Content-Encoding: gzip, gzip`` each layer in turn. A 64 KB read of gzipped zeros is
then 64 MB at once, and of gzipped gzip a gigabyte, before any bound is checked. The calls
ask for no compression (:data:`providers.http.PLAIN`); this is for a server that
compresses anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from typing import cast

import httpx

from providers.base import ErrorKind, ProviderError, ReadLimits, stalled, too_long_line

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_NEWLINE = re.compile(rb"\n")


async def read_capped(response: httpx.Response, limits: ReadLimits) -> bytes:
    """The first ``limits.error_body_bytes`` of ``response``'s body (an error's, read for
    its message), as much of it as came within ``limits.stall_seconds``; the rest is not
    read, and the connection is closed."""
    limit = limits.error_body_bytes
    kept: list[bytes] = []
    size = 0
    # A body that cannot be decoded gives what had been decoded: the status says enough.
    with contextlib.suppress(TimeoutError, ProviderError):
        async with asyncio.timeout(limits.stall_seconds):
            async with aclosing(_body(response)) as chunks:
                async for chunk in chunks:
                    kept.append(chunk[: limit - size])
                    size += len(kept[-1])
                    if size >= limit:
                        break
    await response.aclose()
    return b"".join(kept)


async def read_at_most(response: httpx.Response, limit: int, provider: str) -> bytes | None:
    """The body, if it holds no more than ``limit`` bytes; else ``None`` as soon as more
    came (the rest left unread, the connection closed). No time bound of its own: the
    caller's (a token exchange reads within the answer's first-byte wait)."""
    kept = bytearray()
    async with aclosing(_body(response, provider)) as chunks:
        async for chunk in chunks:
            kept += chunk
            if len(kept) > limit:
                await response.aclose()
                return None
    return bytes(kept)


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


#: The most one piece of a decoded body holds: what httpcore reads of the network at once.
PIECE = 64 * 1024

#: Compressions a server may use though asked for none, which are not decoded here.
_NOT_READ = frozenset({"br", "zstd", "compress", "x-compress"})


class Inflater:
    """One layer of gzip or deflate, inflated a piece of at most :data:`PIECE` bytes at a
    time (``decompress``'s ``max_length``), so that what it expands to is checked against
    the bounds piece by piece."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        # deflate is meant to be zlib-wrapped; some servers send it raw (httpx tries both).
        self.decoder = zlib.decompressobj(zlib.MAX_WBITS | (16 if self.gzip else 0))
        self.first = True

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """What ``data`` inflates to, piece by piece; also what the decoder holds back
        from earlier input when ``data`` is empty."""
        while True:
            try:
                piece = self.decoder.decompress(data, PIECE)
            except zlib.error:
                if not self.first or self.gzip:
                    raise
                self.decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                piece = self.decoder.decompress(data, PIECE)
            self.first = False
            data = self.decoder.unconsumed_tail
            if piece:
                yield piece
            if not data and len(piece) < PIECE:  # all input taken and nothing held back
                return


def _inflaters(response: httpx.Response, provider: str) -> list[Inflater]:
    """The layers to undo, in the order they were applied; identity and tokens no one
    compresses with (some servers name a charset there) are passed over, as httpx does."""
    layers = []
    for value in response.headers.get_list("content-encoding", split_commas=True):
        encoding = value.strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            layers.append(Inflater(encoding))
        elif encoding in _NOT_READ:
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"{provider} sent its answer compressed as {encoding}, which is not read "
                "here (it was asked for the answer uncompressed)",
                permanent=True,
            )
    return layers


def _inflated(data: bytes, layers: list[Inflater]) -> Iterator[bytes]:
    """``data`` through every layer, the last applied first, a piece at a time: a piece
    of one layer goes through the next before the first layer inflates more."""
    if not layers:
        if data:
            yield data
        return
    *inner, outer = layers
    for piece in outer.pieces(data):
        yield from _inflated(piece, inner)
    if not data:  # the end: what the inner layers still hold
        yield from _inflated(b"", inner)


async def _body(
    response: httpx.Response, provider: str = "The server"
) -> AsyncGenerator[bytes, None]:
    """The body's reads, decoded (:class:`Inflater`): no piece longer than a read of the
    network or :data:`PIECE`. Raises :class:`ProviderError` for a compression not read
    here or a compressed body that is broken."""
    try:
        whole = response.content  # a body already read (a response made whole, in tests)
    except httpx.ResponseNotRead:
        pass
    else:
        for start in range(0, len(whole), PIECE):
            yield whole[start : start + PIECE]
        return
    layers = _inflaters(response, provider)
    raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with aclosing(raw):
        try:
            async for data in raw:
                for piece in _inflated(data, layers):
                    yield piece
            for piece in _inflated(b"", layers):
                yield piece
        except zlib.error:
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"{provider} sent a compressed answer that could not be decompressed",
                permanent=False,
            ) from None


async def _chunks(
    response: httpx.Response, limits: ReadLimits, provider: str
) -> AsyncGenerator[bytes, None]:
    """The body's reads, decoded, each awaited at most ``limits.stall_seconds``."""
    async with aclosing(_body(response, provider)) as chunks:
        while True:
            try:
                async with asyncio.timeout(limits.stall_seconds):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise stalled(provider, limits) from None
            yield chunk
