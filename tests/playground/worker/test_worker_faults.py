"""A worker told to stop hands back its panes ("interrupted", with their text, settled), and
an answer's end is saved once the database answers again; driven on the test's event loop
with the real Redis and database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from playground.live import response_log
from playground.models import Response, Status, UsageEntry
from playground.worker import runner
from playground.worker.shutdown import SHUTDOWN_MESSAGE, interrupt_all
from tests.playground.helpers import decoded, make_turn, responses_of, run_turn

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context", "clean_redis"),
]

WORDS = " ".join(f"w{n}" for n in range(200))


async def log_of(aredis: Any, pk: int) -> list[tuple[str, dict[str, str]]]:
    return decoded(await aredis.xrange(response_log.log_key(pk)))


async def test_a_shutdown_ends_streaming_panes_interrupted_with_their_text_and_settles_them(
    owner: Any, aredis: Any
) -> None:
    turn = await sync_to_async(make_turn)(owner, [("echo", {"delay_ms": 100})] * 2, WORDS)
    running = asyncio.create_task(run_turn(turn.pk))
    rows: list[Response] = []
    for _ in range(750):  # up to 15 s on a busy machine
        rows = await sync_to_async(responses_of)(turn)
        logs = [await log_of(aredis, r.pk) for r in rows]
        if all(" w2 " in response_log.merge(entries).text for entries in logs):  # type: ignore[arg-type]
            break
        await asyncio.sleep(0.02)

    assert await interrupt_all() == 2  # what the grace period's end does
    await asyncio.wait_for(running, timeout=5)

    for row in await sync_to_async(responses_of)(turn):
        entries = await log_of(aredis, row.pk)
        shown = response_log.merge(entries).text  # type: ignore[arg-type]
        assert (row.status, row.finish_reason) == (Status.INTERRUPTED, "interrupted")
        assert row.error == SHUTDOWN_MESSAGE
        assert row.text == shown and row.text.startswith("Echo #1: w0 w1 ")
        assert len(row.text) < len("Echo #1: " + WORDS)
        assert entries[-1][1] == {"k": "e", "st": "interrupted"}
        assert await UsageEntry.objects.filter(response_id=row.pk).acount() == 1


async def test_an_end_refused_by_the_database_is_saved_once_it_answers_and_says_so_meanwhile(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    end = runner._end
    refusals: list[int] = []

    def database_away_twice(*args: Any, **kwargs: Any) -> bool:
        if len(refusals) < 2:
            refusals.append(1)
            raise OperationalError("connection to server at 127.0.0.1 refused")
        return end(*args, **kwargs)

    monkeypatch.setattr(runner, "_end", database_away_twice)
    turn = await sync_to_async(make_turn)(owner, [("echo", {"delay_ms": 0})], "one two")

    await asyncio.wait_for(run_turn(turn.pk), timeout=10)

    [row] = await sync_to_async(responses_of)(turn)
    assert (row.status, row.text) == (Status.DONE, "Echo #1: one two")
    entries = await log_of(aredis, row.pk)
    assert {"k": "s", "msg": runner.DATABASE_AWAY} in [fields for _, fields in entries]
    assert entries[-1][1] == {"k": "e", "st": "done"}
    assert await UsageEntry.objects.filter(response_id=row.pk).acount() == 1


async def test_a_database_away_for_longer_than_the_retries_leaves_the_pane_to_the_watchdog(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PLAYGROUND_DB_RETRY_SECONDS = 1

    def database_away(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("connection to server at 127.0.0.1 refused")

    monkeypatch.setattr(runner, "_end", database_away)
    turn = await sync_to_async(make_turn)(owner, [("echo", {"delay_ms": 0})], "one two")

    with pytest.raises(OperationalError):
        await asyncio.wait_for(run_turn(turn.pk), timeout=10)

    [row] = await sync_to_async(responses_of)(turn)
    assert row.status == Status.STREAMING  # no heartbeat from now on: the watchdog's
    await aredis.delete(response_log.heartbeat_key(row.pk))  # what 5 s without a beat does
    await asyncio.sleep(1.6)  # a publisher tick that would beat for it, if it still held it
    assert not await aredis.exists(response_log.heartbeat_key(row.pk))
