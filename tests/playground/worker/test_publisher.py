"""The publisher is the one writer of a streaming response's log: every piece of text and
then the end entry go out in order, also for a response that ends while a tick is in
flight, and nothing is written to a log after its end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from playground.live import response_log
from playground.worker.event_loop import context
from playground.worker.response_run import ResponseRun
from providers.base import ChatRequest
from tests.playground.helpers import Outage, decoded

pytestmark = pytest.mark.usefixtures("worker_context", "clean_redis")


def response_run(response_id: int) -> ResponseRun:
    return ResponseRun(response_id, None, ChatRequest(model="m", messages=[]), "Model")


async def test_ending_while_a_tick_is_in_flight_keeps_every_entry_in_order(aredis: Any) -> None:
    publisher = context().publisher
    runs = [response_run(9000 + i) for i in range(20)]
    words = [f"w{n} " for n in range(200)]

    async def stream(index: int) -> None:
        run = runs[index]
        publisher.begin(run)
        for n, word in enumerate(words):
            publisher.add(run, text=word, reasoning="r" if n % 50 == 0 else "")
            if n % (index + 3) == 0:
                await asyncio.sleep(0.001)  # ends land at every point of a tick's life
        publisher.close(run, "done")
        await run.ended.wait()

    await asyncio.wait_for(asyncio.gather(*(stream(i) for i in range(20))), timeout=20)

    for run in runs:
        entries = decoded(await aredis.xrange(response_log.log_key(run.response_id)))
        seqs = [response_log.seq_of(entry_id) for entry_id, _ in entries]
        assert seqs == list(range(1, len(seqs) + 1))
        assert entries[-1][1] == {"k": "e", "st": "done"}
        assert "".join(f.get("t", "") for _, f in entries) == "".join(words)
        assert "".join(f.get("r", "") for _, f in entries) == "rrrr"
        assert entries[-2][1]["n"] == "200"
        assert not await aredis.exists(response_log.heartbeat_key(run.response_id))
        # The log lives as long as the setting says from its end on.
        assert await aredis.ttl(response_log.log_key(run.response_id)) > 3600


async def test_nothing_is_written_to_a_log_after_its_end(aredis: Any) -> None:
    """Ticks woken by other runs (their first tokens, their status lines) write neither
    entries nor heartbeats for a run whose log is closed."""
    publisher = context().publisher
    ending, other = response_run(9100), response_run(9101)
    publisher.begin(ending)
    publisher.begin(other)
    publisher.add(ending, text="last words")
    publisher.close(ending, "done")
    await ending.ended.wait()
    for _ in range(3):
        publisher.add(other, text="more ")
        publisher.set_status(other, "")
        await asyncio.sleep(0.01)
    publisher.set_status(ending, "too late")
    await asyncio.sleep(publisher.window * 2 + 1.6)  # past a heartbeat and a stop check
    publisher.close(other, "done")
    await other.ended.wait()

    entries = decoded(await aredis.xrange(response_log.log_key(9100)))
    assert [fields["k"] for _, fields in entries] == ["d", "e"]
    assert not await aredis.exists(response_log.heartbeat_key(9100))


async def test_a_dropped_run_gets_no_heartbeat_and_a_later_close_still_ends_its_log(
    aredis: Any,
) -> None:
    """A run whose row could not be written is dropped: its heartbeat stops, so the watchdog
    ends it. A close that comes after all the same (its row written by a thread the task
    stopped waiting for) still writes the end entry."""
    publisher = context().publisher
    dropped, closed_late = response_run(9200), response_run(9201)
    for run in (dropped, closed_late):
        publisher.begin(run)
        publisher.add(run, text="some words")
    await asyncio.sleep(publisher.window * 2)
    for run in (dropped, closed_late):
        publisher.drop(run)
        await aredis.delete(response_log.heartbeat_key(run.response_id))
    await asyncio.sleep(1.6)  # past a heartbeat
    assert not await aredis.exists(response_log.heartbeat_key(9200))
    assert not await aredis.exists(response_log.heartbeat_key(9201))

    publisher.close(closed_late, "done")
    await asyncio.wait_for(closed_late.ended.wait(), timeout=5)

    kinds = [f["k"] for _, f in decoded(await aredis.xrange(response_log.log_key(9201)))]
    assert kinds == ["d", "e"]
    assert [f["k"] for _, f in decoded(await aredis.xrange(response_log.log_key(9200)))] == ["d"]


async def stream_words(publisher: Any, run: ResponseRun, words: list[str]) -> None:
    for word in words:
        publisher.add(run, text=word)
        await asyncio.sleep(publisher.window * 1.5)  # about one entry a word


async def test_entries_redis_did_not_take_are_written_once_it_answers(aredis: Any) -> None:
    publisher = context().publisher
    outage = Outage(publisher.redis)
    run = response_run(9300)
    publisher.begin(run)
    await stream_words(publisher, run, [f"a{n} " for n in range(5)])
    outage.mode = "away"
    await stream_words(publisher, run, [f"b{n} " for n in range(5)])
    await stream_words(publisher, run, [f"c{n} " for n in range(5)])
    outage.mode = "answer lost"
    await stream_words(publisher, run, [f"d{n} " for n in range(5)])
    await aredis.delete(response_log.heartbeat_key(9300))  # gone with the restart
    outage.mode = None
    await stream_words(publisher, run, [f"e{n} " for n in range(5)])
    await asyncio.sleep(0.5)
    assert await aredis.exists(response_log.heartbeat_key(9300))  # beating again
    publisher.close(run, "done")
    await asyncio.wait_for(run.ended.wait(), timeout=5)

    entries = decoded(await aredis.xrange(response_log.log_key(9300)))
    assert [response_log.seq_of(i) for i, _ in entries] == list(range(1, len(entries) + 1))
    text = "".join(f.get("t", "") for _, f in entries)
    assert text == "".join(f"{x}{n} " for x in "abcde" for n in range(5))
    assert entries[-1][1] == {"k": "e", "st": "done"}
    assert not publisher.redis_away


async def test_a_log_redis_lost_is_written_again_under_the_same_numbers(aredis: Any) -> None:
    """Redis came back empty without the publisher seeing an error: the next entry finds
    its log gone, and the log is written again as it was, then goes on. A page that had
    shown entry N reads the rest of the answer from N + 1, once."""
    publisher = context().publisher
    run = response_run(9400)
    publisher.begin(run)
    publisher.set_status(run, "waiting for Model — 1 ahead")
    await asyncio.sleep(publisher.window * 2)
    publisher.set_status(run, "")
    await stream_words(publisher, run, [f"a{n} " for n in range(6)])
    await asyncio.sleep(publisher.window * 2)
    before = decoded(await aredis.xrange(response_log.log_key(9400)))
    await aredis.delete(response_log.log_key(9400))

    await stream_words(publisher, run, [f"b{n} " for n in range(4)])
    publisher.close(run, "done")
    await asyncio.wait_for(run.ended.wait(), timeout=5)

    after = decoded(await aredis.xrange(response_log.log_key(9400)))
    assert after[: len(before)] == before
    assert [response_log.seq_of(i) for i, _ in after] == list(range(1, len(after) + 1))
    for shown in range(len(before) + 1):  # a page that had shown `shown` entries
        rest = "".join(f.get("t", "") for _, f in after[shown:])
        seen = "".join(f.get("t", "") for _, f in before[:shown])
        assert seen + rest == "".join(f"{x}{n} " for x, k in (("a", 6), ("b", 4)) for n in range(k))
    assert await aredis.ttl(response_log.log_key(9400)) > 0
