"""Replaying recorded provider streams in tests: fixture files, byte streams that can be cut
or watched for closing, and a fake sleep that records the delays it was asked for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from providers.base import ChatRequest, Credentials, Event, Message, Provider

STREAMS = Path(__file__).resolve().parents[1] / "fixtures" / "streams"
KEY = "sk-test-7f3a9c2e1b5d4f6a8c0e2b4d6f8a0c1e"


def recorded(provider: str, case: str) -> bytes:
    """The bytes of ``tests/fixtures/streams/<provider>/<case>.sse``."""
    return (STREAMS / provider / f"{case}.sse").read_bytes()


def pieces(data: bytes, size: int = 41) -> list[bytes]:
    """``data`` in odd-sized pieces, as a network delivers it (lines split across reads)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class Replay(httpx.AsyncByteStream):
    """A response body that yields ``chunks``; with ``cut`` it then fails like a dropped
    connection. Records whether it was closed and how many chunks were read."""

    def __init__(self, chunks: Iterable[bytes], *, cut: bool = False) -> None:
        self.chunks = list(chunks)
        self.cut = cut
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk
            await asyncio.sleep(0)
        if self.cut:
            raise httpx.ReadError("Connection reset by peer")

    async def aclose(self) -> None:
        self.closed = True


def sse(
    body: bytes | Replay, status: int = 200, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    stream = body if isinstance(body, Replay) else Replay(pieces(body))
    return httpx.Response(
        status, headers={"content-type": "text/event-stream", **(headers or {})}, stream=stream
    )


def head(data: bytes, marker: bytes) -> bytes:
    """``data`` up to the start of the first line holding ``marker``."""
    return data[: data.rindex(b"\n", 0, data.index(marker)) + 1]


def cut_before(data: bytes, marker: bytes, keep: int = 25) -> Replay:
    """The stream up to ``keep`` bytes into the first line holding ``marker``, then a drop."""
    start = len(head(data, marker))
    return Replay(pieces(data[: start + keep]), cut=True)


def error_body(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


class FakeSleep:
    """Stands in for ``asyncio.sleep`` and remembers the delays."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def chat(
    model: str,
    *messages: Message,
    key: str = KEY,
    params: Mapping[str, Any] | None = None,
    base_url: str = "",
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=messages or (Message("user", "Hello"),),
        params=dict(params or {}),
        credentials=Credentials(api_key=key),
        base_url=base_url,
    )


async def collect(
    provider: Provider, request: ChatRequest, sleep: FakeSleep | None = None
) -> list[Event]:
    async with httpx.AsyncClient() as client:
        return [e async for e in provider.stream(client, request, sleep=sleep or FakeSleep())]


def sent_json(request: httpx.Request) -> Any:
    return json.loads(request.content)
