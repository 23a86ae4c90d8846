"""A misbehaving provider on loopback, for fault tests: a real HTTP/1.1 server that answers
each POST with the next of its scripted :class:`Reply`s (the last one again once they run
out): late, never, with an error, with a body that stalls, never ends, or holds one line
without end. It records what it was asked and how much of each body it got to send.

:class:`Wire` writes an answer's pieces in a provider's own framing (OpenAI-style SSE,
Anthropic's and Gemini's SSE, Ollama's NDJSON); :func:`bomb` compresses a body that
inflates without end."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

FOREVER = 3600.0


@dataclass
class Reply:
    """One answer: after ``delay`` seconds (``FOREVER``: never) the status and headers, then
    ``body`` chunk by chunk, ``gap`` seconds apart; then the end of the body, or, with
    ``hold``, the connection kept open and silent."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    body: Iterable[bytes] = ()
    delay: float = 0.0
    gap: float = 0.0
    hold: bool = False


@dataclass
class Upstream:
    replies: list[Reply]
    requests: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)  # per request, names lowered
    sent: list[int] = field(default_factory=list)  # body bytes written, per request
    finished: list[bool] = field(default_factory=list)  # whether the whole body went out
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def reply(self) -> Reply:
        return self.replies[min(self.requests - 1, len(self.replies) - 1)]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        # Cancelled when the test ends: that ends the handler quietly (asyncio would log it).
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError
        ):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                headers = {}
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests += 1
                self.headers.append(headers)
                self.sent.append(0)
                self.finished.append(False)
                await self.answer(self.reply(), reader, writer)
        writer.close()

    async def answer(
        self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if reply.delay:
            await _quiet(reader, reply.delay)
        headers = {**reply.headers, "transfer-encoding": "chunked"}
        writer.write(
            f"HTTP/1.1 {reply.status} X\r\n".encode()
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
            + b"\r\n"
        )
        for index, chunk in enumerate(reply.body):
            if index and reply.gap:
                await asyncio.sleep(reply.gap)
            writer.write(b"%x\r\n" % len(chunk))
            writer.write(chunk)
            writer.write(b"\r\n")
            await writer.drain()
            await asyncio.sleep(0)  # the client shares this loop: let it read
            self.sent[-1] += len(chunk)
        if reply.hold:
            await _quiet(reader, FOREVER)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.finished[-1] = True

    async def cut(self, seconds: float = 5.0) -> bool:
        """Whether every connection was closed by the client within ``seconds``: each
        handler ends when its connection is closed from the other side."""
        done, _ = await asyncio.wait(self.tasks, timeout=seconds)
        return len(done) == len(self.tasks)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _quiet(reader: asyncio.StreamReader, seconds: float) -> None:
    """Say nothing for ``seconds``; raise ConnectionError as soon as the client closes."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            if not await reader.read(1):
                raise ConnectionResetError("closed by the client")


@contextlib.asynccontextmanager
async def serving(*replies: Reply) -> AsyncIterator[tuple[Upstream, str]]:
    """The server on a free loopback port, and its base URL."""
    upstream = Upstream(list(replies))
    listener = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield upstream, f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await upstream.close()


# --------------------------------------------------------------------------- compression

_WBITS = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS, "raw deflate": -zlib.MAX_WBITS}


@dataclass(frozen=True)
class Bomb:
    """A compressed body without end: ``first``, then ``again`` again and again; each
    request that is sent it starts from the beginning."""

    first: bytes
    again: bytes

    def __iter__(self) -> Iterator[bytes]:
        return itertools.chain([self.first], itertools.repeat(self.again))


def bomb(encoding: str, prefix: bytes, byte: bytes) -> Bomb:
    """A body of ``prefix`` then ``byte`` without end, compressed with ``encoding``'s layers
    in order ("gzip", "deflate", "raw deflate": deflate without its zlib wrapper; "gzip,
    gzip": twice): a first chunk, then the same chunk of about 64 KB (a few hundred bytes
    for two layers) without end, each inflating to 64 MB or more. Worked out here, before
    any memory is measured."""
    first_layer, *outer = (_WBITS[name.strip()] for name in encoding.split(","))
    compressor = zlib.compressobj(9, zlib.DEFLATED, first_layer)
    megabyte = byte * (1024 * 1024)

    def flushed(data: bytes) -> bytes:
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    first = flushed(prefix + megabyte)
    # Every later megabyte meets the same window (the last 32 KB: ``byte``s), so its
    # compressed form is the same and may be sent again and again.
    again = flushed(megabyte) * 64
    first += again  # the first chunk inflates to 64 MB too
    for layer in outer:
        compressor = zlib.compressobj(9, zlib.DEFLATED, layer)
        first = flushed(first) + flushed(again)
        again = flushed(again)
    return Bomb(first, again)


# --------------------------------------------------------------------------- framing


def _sse(data: Any, event: str = "") -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


@dataclass(frozen=True)
class Wire:
    """A provider's framing of an answer: ``delta(text)`` for a piece of text, ``end`` for
    what closes a finished answer, and the content type."""

    provider: str
    delta: Callable[[str], bytes]
    end: bytes
    content_type: str = "text/event-stream"

    def answer(self, *pieces: str, end: bool = True) -> list[bytes]:
        return [self.delta(p) for p in pieces] + ([self.end] if end else [])

    def endless(self, piece: str) -> Iterator[bytes]:
        """The same piece of text without end."""
        return itertools.repeat(self.delta(piece))

    def reply(self, body: Iterable[bytes], **kwargs: Any) -> Reply:
        return Reply(headers={"content-type": self.content_type}, body=body, **kwargs)


OPENAI = Wire(
    "openai_compatible",
    lambda text: _sse({"choices": [{"index": 0, "delta": {"content": text}}]}),
    _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"data: [DONE]\n\n",
)
ANTHROPIC = Wire(
    "anthropic",
    lambda text: _sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        "content_block_delta",
    ),
    _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, "message_delta")
    + _sse({"type": "message_stop"}, "message_stop"),
)
GEMINI = Wire(
    "gemini",
    lambda text: _sse({"candidates": [{"content": {"parts": [{"text": text}]}}]}),
    _sse({"candidates": [{"content": {"parts": []}, "finishReason": "STOP"}]}),
)
OLLAMA = Wire(
    "ollama_native",
    lambda text: (
        json.dumps({"message": {"role": "assistant", "content": text}, "done": False}) + "\n"
    ).encode(),
    b'{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}\n',
    "application/x-ndjson",
)
WIRES = [OPENAI, ANTHROPIC, GEMINI, OLLAMA]
