"""What one person's sockets may cost the web process: at most PLAYGROUND_SOCKETS_PER_PERSON
open at once (the next is closed with 4409, which the page turns into a sentence), and a
page that stops reading is sent at most WINDOW_CHARS ahead of what it acknowledged, then
closed (4408) when it does not catch up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from playground.live import consumer
from tests.playground.live.test_consumer import connected, delta, response_ids, streaming_turn

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("consumer_redis"),
]


async def closed_with(ws: WebsocketCommunicator, seconds: float = 5) -> int:
    """The close code that ends what the socket sends (messages before it are skipped)."""
    while True:
        output = await ws.receive_output(timeout=seconds)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


def test_the_default_cap_is_generous() -> None:
    from django.conf import settings

    assert settings.PLAYGROUND_SOCKETS_PER_PERSON == 20


async def test_one_socket_more_than_a_person_may_have_is_closed_with_4409(
    owner: Any, outsider: Any, settings: Any
) -> None:
    settings.PLAYGROUND_SOCKETS_PER_PERSON = 3
    turn = await streaming_turn(owner)
    mine = [await connected(turn.session_id, owner) for _ in range(3)]
    theirs = await streaming_turn(outsider)
    try:
        extra = await connected(turn.session_id, owner)
        assert await closed_with(extra) == 4409
        # Someone else's socket is not counted against them.
        other = await connected(theirs.session_id, outsider)
        assert await other.receive_nothing(timeout=0.3)
        await other.disconnect()
        # A socket closed gives its place back.
        await mine.pop().disconnect()
        again = await connected(turn.session_id, owner)
        assert await again.receive_nothing(timeout=0.3)
        mine.append(again)
    finally:
        for ws in mine:
            await ws.disconnect()


async def test_a_page_that_stops_reading_is_sent_a_window_then_closed_with_4408(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer, "WINDOW_CHARS", 20_000)
    monkeypatch.setattr(consumer, "STALL_S", 1.5)
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    ws = await connected(turn.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        # Half a megabyte streams while the page reads nothing.
        for n in range(1, 101):
            await aredis.xadd(f"pg:log:{rid}", delta(n, f"{n:04d}" + "x" * 4996), id=f"0-{n}")
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        queued = list(ws.output_queue._queue)  # type: ignore[attr-defined]
        sent = sum(len(m.get("text", "")) for m in queued)
        biggest = max(len(m.get("text", "")) for m in queued)
        assert sent <= 20_000 + biggest
        assert sent < 100 * 5000 / 4
        # Still not reading: the socket is closed.
        assert await closed_with(ws, seconds=5) == 4408
    finally:
        await ws.disconnect()


async def test_a_page_that_acknowledges_is_sent_everything(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer, "WINDOW_CHARS", 20_000)
    monkeypatch.setattr(consumer, "STALL_S", 1.5)
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    ws = await connected(turn.session_id, owner)
    received = 0
    text = ""
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        for n in range(1, 101):
            await aredis.xadd(f"pg:log:{rid}", delta(n, f"{n:04d}" + "x" * 4996), id=f"0-{n}")
        while f"0100{'x' * 4996}" not in text:
            text += await ws.receive_from(timeout=5)
            received += 1
            await ws.send_json_to({"type": "ack", "n": received})
        assert all(f"{n:04d}x" in text for n in range(1, 101))
        assert text.count("x" * 4996) == 100  # each once
        assert await ws.receive_nothing(timeout=2)  # and not closed
    finally:
        await ws.disconnect()
