"""An endpoint's slots are shared between people: one person's panes hold at most their
share of them (PLAYGROUND_FAIR_ENDPOINT_SHARE), so another person's pane starts at once
however many panes the first one sends, and the first one's extra panes wait their turn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from playground.catalog import forget_catalog
from playground.live import response_log
from playground.models import CatalogEntry, Response, Status
from playground.worker.slots import person_share
from tests.playground.helpers import decoded, make_turn, run_turn

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

SLOW = {"delay_ms": 100, "repeat": 3}  # 3 × 6 words at 100 ms: about two seconds


def test_a_person_may_hold_half_of_an_endpoints_slots_and_always_one() -> None:
    assert [person_share(limit) for limit in (1, 2, 3, 16)] == [1, 1, 2, 8]


@sync_to_async
def two_slot_echo() -> None:
    CatalogEntry.objects.filter(key="echo").update(concurrency=2)
    forget_catalog()


async def test_one_persons_panes_leave_a_slot_for_another_persons_pane(
    owner: Any, django_user_model: Any, aredis: Any
) -> None:
    await two_slot_echo()
    other = await django_user_model.objects.acreate(username="other")
    many = await sync_to_async(make_turn)(owner, [("echo", SLOW)] * 3, "one two three four five")
    one = await sync_to_async(make_turn)(other, [("echo", {"delay_ms": 0})], "mine")

    first = asyncio.create_task(run_turn(many.pk))
    try:
        await asyncio.sleep(0.3)  # the first person's panes have started, or wait
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(run_turn(one.pk), 10)
        took = asyncio.get_running_loop().time() - started
        theirs = [
            s async for s in Response.objects.filter(turn=many).values_list("status", flat=True)
        ]
    finally:
        await asyncio.wait_for(first, 20)

    # The other person's pane did not wait for the first person's answers to end.
    mine = await Response.objects.aget(turn=one)
    assert (mine.status, mine.text, mine.waited_ms) == (Status.DONE, "Echo #1: mine", 0)
    assert took < 1.0
    assert Status.STREAMING in theirs  # still answering meanwhile
    # The first person's panes all ran, one at a time: each after waiting for the one
    # before (one slot of the two was theirs).
    rows = [r async for r in Response.objects.filter(turn=many).order_by("pk")]
    assert {r.status for r in rows} == {Status.DONE}
    assert sorted(r.waited_ms > 0 for r in rows) == [False, True, True]
    waits = set()
    for row in rows:
        for _id, fields in decoded(await aredis.xrange(response_log.log_key(row.pk))):
            if fields.get("k") == "s" and fields.get("msg"):
                waits.add(fields["msg"])
    assert waits and all(m.startswith("waiting for Echo — ") for m in waits)
    # Nothing of theirs is left behind in Redis.
    for key in ("slots", "queue", "slotowners"):
        assert await aredis.exists(f"pg:{key}:echo") == 0
