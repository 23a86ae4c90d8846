"""A fake OpenAI-compatible server on loopback that records the bytes it is sent (the
``fake_server`` fixture of tests/playground/conftest.py serves one per test)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tests.playground.helpers import sse_chunks


@dataclass
class FakeOpenAI:
    """Answers every POST with an OpenAI-style stream and records what it was sent."""

    pieces: tuple[str, ...] = ("Hello", " from", " the fake")
    requests: list[dict[str, Any]] = field(default_factory=list)
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                request_line, *lines = head.split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                method, path, _ = request_line.split(" ", 2)
                self.requests.append(
                    {"method": method, "path": path, "headers": headers, "json": json.loads(body)}
                )
                answer = b"".join(sse_chunks(list(self.pieces)))
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    """A :class:`FakeOpenAI` listening on a free port, and its base URL."""
    server = FakeOpenAI()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}/v1"
    finally:
        listener.close()
        # Connections the worker's client keeps open: close them, so that their handlers
        # end before the test's loop does.
        for writer in server.writers:
            writer.close()
        await asyncio.gather(*server.handlers, return_exceptions=True)
