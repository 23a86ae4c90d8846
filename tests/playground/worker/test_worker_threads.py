"""A worker's Celery threads are not held by turns whose panes wait: with a threads pool of
two and two people's turns queued at a busy endpoint, a third person's turn starts at once.
The task bodies run as Celery runs them, each in a thread of a pool of two, on the worker's
one event loop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from django.conf import settings

from playground.catalog import forget_catalog
from playground.models import CatalogEntry, Response, Status
from tests.playground.helpers import make_turn
from tests.playground.worker.conftest import celery_task, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BUSY = "echo-busy"  # an Echo at an endpoint of one slot, which someone else holds
HOLDER = 10**9  # the response id of that someone's answer


@pytest.fixture
def busy_endpoint() -> Iterator[redis.Redis]:
    """An Echo whose one slot is held by a live answer of someone else's."""
    CatalogEntry.objects.create(
        key=BUSY,
        display_name="Echo (busy)",
        provider="echo",
        model_id="echo",
        base_url="http://echo-busy.invalid",
        concurrency=1,
    )
    forget_catalog()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(f"pg:hb:{HOLDER}", 1, ex=60)
    client.zadd("pg:slots:http://echo-busy.invalid", {str(HOLDER): time.time()})
    yield client
    forget_catalog()
    client.close()


def test_turns_waiting_for_a_slot_leave_the_threads_to_a_third_persons_turn(
    worker_loop: Any, busy_endpoint: redis.Redis, django_user_model: Any
) -> None:
    alice, bob, carol = (
        django_user_model.objects.create_user(name) for name in ("alice", "bob", "carol")
    )
    waiting = [make_turn(person, [(BUSY, {"delay_ms": 0})], "wait") for person in (alice, bob)]
    carols = make_turn(carol, [("echo", {"delay_ms": 0})], "one two three")

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="celery-pool") as pool:
        tasks = [pool.submit(celery_task, turn.pk) for turn in (*waiting, carols)]
        # Carol's turn streams to its end while the other two wait for the busy endpoint.
        answered = wait_for(
            lambda: Response.objects.filter(turn=carols, status=Status.DONE).exists(), 10
        )
        busy = list(Response.objects.filter(turn__in=waiting).values_list("status", flat=True))
        # The endpoint's answer ends; the waiting panes are served, threads or not.
        busy_endpoint.delete(f"pg:hb:{HOLDER}", "pg:slots:http://echo-busy.invalid")
        for task in tasks:
            task.result(timeout=30)
        ended = wait_for(lambda: Response.objects.filter(status=Status.DONE).count() == 3, 20)

    assert answered, "Carol's turn did not start while two turns waited for a slot"
    assert busy == [Status.STREAMING, Status.STREAMING]
    assert Response.objects.get(turn=carols).text == "Echo #1: one two three"
    assert ended
    assert {r.text for r in Response.objects.filter(turn__in=waiting)} == {"Echo #1: wait"}
