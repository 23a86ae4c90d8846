"""A pane whose worker died while nobody watched it is ended by a worker's own sweep, with
the text it had shown, and settled once: its reservation given back without anyone
opening its page. One worker sweeps at a time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from playground import quotas
from playground.live import response_log
from playground.live.watchdog import INTERRUPTED_MESSAGE
from playground.models import Quota, QuotaCounter, Response, Status, UsageEntry
from playground.worker import event_loop
from playground.worker.sweep import sweep, sweep_forever
from tests.playground.helpers import send_form

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

HTMX = {"HTTP_HX_REQUEST": "true"}
SHOWN = "Half an answer"


def reserved_tokens(user: Any) -> int:
    counter = QuotaCounter.objects.get(
        owner=f"user:{user.pk}", period=quotas.month_of(timezone.now())
    )
    return counter.reserved_tokens


@sync_to_async
def dead_pane(owner: Any, owner_client: Any, client: redis.Redis) -> Response:
    """A Send's pane, claimed and streaming, whose worker then died (SIGKILL): its log and
    its checkpoint hold what it had shown, its heartbeat is gone, nobody follows it."""
    Quota.objects.create(scope="user", user=owner, tokens_per_month=10**6)
    sent = owner_client.post(reverse("send_new"), send_form(), **HTMX)
    assert sent.status_code == 200
    client.delete("celery")  # no worker here
    response = Response.objects.get()
    Response.objects.filter(pk=response.pk).update(
        status=Status.STREAMING, started_at=timezone.now(), text="Half an"
    )
    log = response_log.log_key(response.pk)
    client.xadd(log, {"k": "d", "t": "Half ", "n": 1, "ms": 120, "ttft": 120}, id="0-1")
    client.xadd(log, {"k": "d", "t": "an answer", "n": 3, "ms": 480}, id="0-2")
    assert reserved_tokens(owner) > 0
    return response


async def test_a_pane_whose_worker_died_unwatched_is_ended_and_settled_by_the_sweep(
    owner: Any, owner_client: Any, clean_redis: redis.Redis, settings: Any
) -> None:
    settings.PLAYGROUND_SWEEP_SECONDS = 1
    response = await dead_pane(owner, owner_client, clean_redis)

    died = time.monotonic()
    sweeping = asyncio.create_task(sweep_forever())
    try:
        for _ in range(300):  # the bound here: a round (1 s) and two looks (about 2 s)
            row = await Response.objects.aget(pk=response.pk)
            if row.status != Status.STREAMING:
                break
            await asyncio.sleep(0.05)
        ended_after = time.monotonic() - died
    finally:
        sweeping.cancel()

    assert (row.status, row.error, row.text) == (Status.INTERRUPTED, INTERRUPTED_MESSAGE, SHOWN)
    assert ended_after < 10
    assert await UsageEntry.objects.filter(response_id=row.pk).acount() == 1
    assert await sync_to_async(reserved_tokens)(owner) == 0
    entries = clean_redis.xrange(response_log.log_key(row.pk))
    assert response_log.decoded(entries[-1][1]) == {"k": "e", "st": "interrupted"}


async def test_one_worker_sweeps_at_a_time_and_a_pane_is_settled_once(
    owner: Any, owner_client: Any, clean_redis: redis.Redis
) -> None:
    response = await dead_pane(owner, owner_client, clean_redis)
    redis_client = event_loop.context().redis

    first, second = await asyncio.gather(sweep(redis_client, 30), sweep(redis_client, 30))

    assert sorted([first, second]) == [[], [response.pk]]
    assert await UsageEntry.objects.filter(response_id=response.pk).acount() == 1
    assert await sweep(redis_client, 30) == []  # within the interval: nobody sweeps again


async def test_a_pane_whose_worker_beats_is_left_alone(
    owner: Any, owner_client: Any, clean_redis: redis.Redis
) -> None:
    response = await dead_pane(owner, owner_client, clean_redis)
    clean_redis.set(response_log.heartbeat_key(response.pk), 1, ex=30)

    assert await sweep(event_loop.context().redis, 30) == []

    row = await Response.objects.aget(pk=response.pk)
    assert row.status == Status.STREAMING
    assert await UsageEntry.objects.filter(response_id=row.pk).acount() == 0
