"""An answer is read to the end of its body, so httpx keeps the connection for the next
call: against a real HTTP/1.1 server on loopback, two answers in a row take one connection
(left unread after the end marker, each answer cost a new TCP, and at a vendor a TLS,
handshake). A server that keeps the stream open after the end marker does not hold the
answer up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from providers.base import Finish, Provider, TextDelta
from providers.registry import provider_class
from tests.providers.replay import KEY, chat, recorded

CASES = [
    # provider, recorded stream, its content type, how its answer ends
    ("openai", ("openai", "answer"), "text/event-stream", "data: [DONE]"),
    ("anthropic", ("anthropic", "answer"), "text/event-stream", "message_stop"),
    ("ollama_native", ("ollama_native", "answer"), "application/x-ndjson", '"done":true'),
    ("llama_api", ("llama_api", "answer"), "text/event-stream", "complete"),
]


class Server:
    """Answers every POST with one recorded body, chunked, and keeps connections open;
    with ``hold`` it leaves the body unfinished after the recording."""

    def __init__(self, body: bytes, content_type: str, hold: bool = False) -> None:
        self.body, self.content_type, self.hold = body, content_type, hold
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: "
                    + self.content_type.encode()
                    + b"\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                for start in range(0, len(self.body), 97):  # pieces, as a network sends
                    part = self.body[start : start + 97]
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                if self.hold:
                    await asyncio.sleep(30)  # the stream stays open
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()


async def answer(provider: Provider, client: httpx.AsyncClient, base_url: str) -> str:
    request = chat("some-model", key=KEY, base_url=base_url)
    events = [e async for e in provider.stream(client, request)]
    assert isinstance(events[-1], Finish), events[-1]
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize(("name", "fixture", "content_type", "end"), CASES)
async def test_two_answers_in_a_row_take_one_connection(
    name: str, fixture: tuple[str, str], content_type: str, end: str
) -> None:
    body = recorded(*fixture)
    assert end.encode() in body.replace(b'": ', b'":')
    server = Server(body, content_type)
    provider = provider_class(name)()
    async with serving(server) as base_url, httpx.AsyncClient() as client:
        first = await answer(provider, client, base_url)
        second = await answer(provider, client, base_url)
    assert first and first == second
    assert (server.requests, server.connections) == (2, 1)


async def test_a_stream_kept_open_after_its_end_marker_does_not_hold_the_answer() -> None:
    server = Server(recorded("openai", "answer"), "text/event-stream", hold=True)
    provider = provider_class("openai")()
    async with serving(server) as base_url, httpx.AsyncClient() as client:
        started = time.monotonic()
        text = await answer(provider, client, base_url)
        took = time.monotonic() - started
        await answer(provider, client, base_url)  # a new connection: the held one was closed
    assert text
    assert took < 5  # the read of the rest gives up after half a second, not at 30 s
    assert (server.requests, server.connections) == (2, 2)
