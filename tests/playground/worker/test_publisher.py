"""The publisher is the one writer of a streaming pane's log: every piece of text goes out
in order, also for a run that ends while a tick is in flight, and nothing is written for
a run after its last flush (its end entry comes next, from the runner)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from playground.live import response_log
from playground.worker.event_loop import context
from playground.worker.response_run import ResponseRun
from providers.base import ChatRequest
from tests.playground.helpers import decoded

pytestmark = pytest.mark.usefixtures("worker_context", "clean_redis")


def response_run(response_id: int) -> ResponseRun:
    return ResponseRun(response_id, None, ChatRequest(model="m", messages=[]), "Model")


async def test_ending_while_a_tick_is_in_flight_keeps_every_entry_in_order(aredis: Any) -> None:
    publisher = context().publisher
    runs = [response_run(9000 + i) for i in range(20)]
    words = [f"w{n} " for n in range(200)]
    last: dict[int, int] = {}

    async def stream(index: int) -> None:
        run = runs[index]
        publisher.begin(run)
        for n, word in enumerate(words):
            publisher.add(run, text=word, reasoning="r" if n % 50 == 0 else "")
            if n % (index + 3) == 0:
                await asyncio.sleep(0.001)  # ends land at every point of a tick's life
        last[run.response_id] = await publisher.flush_last(run)

    await asyncio.wait_for(asyncio.gather(*(stream(i) for i in range(20))), timeout=20)

    for run in runs:
        entries = decoded(await aredis.xrange(response_log.log_key(run.response_id)))
        seqs = [response_log.seq_of(entry_id) for entry_id, _ in entries]
        assert seqs == list(range(1, len(seqs) + 1))
        assert seqs[-1] == last[run.response_id]
        assert "".join(f.get("t", "") for _, f in entries) == "".join(words)
        assert "".join(f.get("r", "") for _, f in entries) == "rrrr"
        assert entries[-1][1]["n"] == "200"


async def test_nothing_is_written_for_a_pane_after_its_last_flush(aredis: Any) -> None:
    """Ticks woken by other panes (their first tokens, their status lines) write neither
    entries nor heartbeats for a run whose last text is flushed."""
    publisher = context().publisher
    ending, other = response_run(9100), response_run(9101)
    publisher.begin(ending)
    publisher.begin(other)
    publisher.add(ending, text="last words")
    assert await publisher.flush_last(ending) == 1
    await aredis.delete(response_log.heartbeat_key(9100))
    for _ in range(3):
        publisher.add(other, text="more ")
        publisher.set_status(other, "")
        await asyncio.sleep(0.01)
    publisher.set_status(ending, "too late")
    await asyncio.sleep(publisher.window * 2 + 1.6)  # past a heartbeat and a stop check
    await publisher.flush_last(other)

    entries = decoded(await aredis.xrange(response_log.log_key(9100)))
    assert [(entry_id, fields["t"]) for entry_id, fields in entries] == [("0-1", "last words")]
    assert not await aredis.exists(response_log.heartbeat_key(9100))
    assert await aredis.exists(response_log.heartbeat_key(9101))
