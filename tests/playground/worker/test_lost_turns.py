"""A worker took a turn's task off the queue and died before it claimed the turn: the
broker would give the task back only after its visibility timeout (an hour). The sweep
sends it again once a minute has passed, once; it sends nothing again for tasks still
waiting in the queue, however long the backlog, nor for a worker that is well."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from playground.celery import app
from playground.models import Response, Status, Turn
from playground.worker.sweep import UNACKED, UNACKED_INDEX, requeue_lost_turns_sync
from tests.playground.helpers import make_turn, responses_of, run_turn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(clean_redis: redis.Redis) -> Iterator[redis.Redis]:
    """The broker's queue and its record of taken messages, empty before and after."""
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    keys = ("celery", UNACKED, UNACKED_INDEX)
    clean_redis.delete(*keys)
    yield clean_redis
    clean_redis.delete(*keys)


def queued(client: redis.Redis) -> list[list[Any]]:
    """The args of every task in the queue, oldest first."""
    bodies = [json.loads(m)["body"] for m in reversed(client.lrange("celery", 0, -1))]
    return [json.loads(base64.b64decode(body))[0] for body in bodies]


def send(turn: Turn) -> None:
    """The Send view's task for ``turn``, into the queue."""
    app.send_task("playground.run_turn", args=[turn.pk, [r.pk for r in responses_of(turn)]])


def taken_by_a_worker_that_died(client: redis.Redis, turn: Turn, seconds_ago: float) -> None:
    """The turn's task, taken off the queue by a worker (as kombu records it: the message
    in ``unacked`` and the time in ``unacked_index``), which then died: nothing gives it
    back before the visibility timeout."""
    send(turn)
    with app.connection_for_read() as connection:
        message = connection.default_channel.basic_get("celery", no_ack=False)
        tag = message.delivery_tag
        record = client.hget(UNACKED, tag)
        assert record is not None
    # Closing the connection gave it back to the queue, as a worker's clean exit does; a
    # killed worker leaves the record behind instead.
    client.delete("celery")
    client.hset(UNACKED, tag, record)
    client.zadd(UNACKED_INDEX, {tag: time.time() - seconds_ago})


@pytest.mark.usefixtures("worker_context")
async def test_a_turn_taken_by_a_worker_that_died_is_sent_again_once_and_answered_once(
    owner: Any, broker: redis.Redis
) -> None:
    turn = await sync_to_async(make_turn)(owner, [("echo", {"delay_ms": 0})] * 2, "one two")
    await sync_to_async(taken_by_a_worker_that_died)(broker, turn, seconds_ago=61)
    ids = sorted(r.pk for r in await sync_to_async(responses_of)(turn))

    assert await sync_to_async(requeue_lost_turns_sync)() == [turn.pk]
    assert await sync_to_async(requeue_lost_turns_sync)() == []  # once per delivery

    assert queued(broker) == [[turn.pk, ids]]
    await run_turn(turn.pk)  # the task sent again
    rows = await sync_to_async(responses_of)(turn)
    assert {(r.status, r.text) for r in rows} == {(Status.DONE, "Echo #1: one two")}
    # The lost message, given back by the broker an hour later, finds nothing to do.
    finished = [(r.pk, r.finished_at) for r in rows]
    await run_turn(turn.pk)
    after = await sync_to_async(responses_of)(turn)
    assert [(r.pk, r.finished_at) for r in after] == finished


def test_a_backlog_of_queued_turns_is_not_sent_again(owner: Any, broker: redis.Redis) -> None:
    """Fifty turns waiting in the queue (no worker free): none was taken, so none is sent
    again, however long they wait. Nor is a task taken a moment ago, nor one whose worker
    claimed it and streams it."""
    just_taken = make_turn(owner, [("echo", {})], "just taken")
    taken_by_a_worker_that_died(broker, just_taken, seconds_ago=5)
    streaming = make_turn(owner, [("echo", {})], "streaming")
    taken_by_a_worker_that_died(broker, streaming, seconds_ago=600)
    Response.objects.filter(turn=streaming).update(status=Status.STREAMING)
    for n in range(50):
        send(make_turn(owner, [("echo", {})], f"turn {n}"))
    before = queued(broker)
    assert len(before) == 50

    assert requeue_lost_turns_sync() == []

    assert queued(broker) == before
