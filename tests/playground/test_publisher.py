"""The publisher is the one writer of every pane's log: the last text and the end entry go
out in order even when the pane ends while a tick is in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from playground import panelog
from playground.worker_loop import context
from tests.playground.helpers import decoded

pytestmark = pytest.mark.usefixtures("worker_context", "clean_redis")


async def test_ending_while_a_tick_is_in_flight_keeps_every_entry_in_order(aredis: Any) -> None:
    publisher = context().publisher
    buffers = [publisher.register(9000 + i) for i in range(20)]
    words = [f"w{n} " for n in range(200)]

    async def pane(index: int) -> None:
        buffer = buffers[index]
        for n, word in enumerate(words):
            publisher.add_text(buffer, word)
            if n % (index + 3) == 0:
                await asyncio.sleep(0.001)  # ends land at every point of a tick's life
        await publisher.write_end(buffer, "done")
        publisher.unregister(buffer)

    await asyncio.wait_for(asyncio.gather(*(pane(i) for i in range(20))), timeout=20)

    for buffer in buffers:
        entries = decoded(await aredis.xrange(panelog.log_key(buffer.response_id)))
        seqs = [panelog.seq_of(entry_id) for entry_id, _ in entries]
        assert seqs == list(range(1, len(seqs) + 1))
        assert [fields["k"] for _, fields in entries][-1] == "e"
        assert entries[-1][1]["st"] == "done"
        assert "".join(f.get("t", "") for _, f in entries) == "".join(words)
        assert not await aredis.exists(panelog.heartbeat_key(buffer.response_id))


async def test_a_pane_whose_end_is_written_gets_no_second_end(aredis: Any) -> None:
    """A pane unregisters after write_end returns; ticks that run before that (a wake-up
    from another pane) must not write its end entry again."""
    publisher = context().publisher
    ending, other = publisher.register(9100), publisher.register(9101)
    publisher.add_text(ending, "last words")
    await publisher.write_end(ending, "done")
    for _ in range(3):  # other panes' first tokens wake the publisher at once
        publisher.add_text(other, "more ")
        publisher.set_status(other, "")
        await asyncio.sleep(0.01)
    publisher.unregister(ending)
    await publisher.write_end(other, "done")
    publisher.unregister(other)

    entries = decoded(await aredis.xrange(panelog.log_key(9100)))
    assert [fields["k"] for _, fields in entries] == ["d", "e"]
