"""A pane that waits for its endpoint's slot: the longest answer counts from its call, not
from its wait; the wait has its own bound; and a worker told to stop hands it back to the
queue, for another worker to answer from the start, never two at once. The local model
(one slot) answers through respx; someone else's live answer holds its slot."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
import respx
from asgiref.sync import sync_to_async
from django.conf import settings

from playground.live import response_log
from playground.models import Response, Status, UsageEntry
from playground.views.stop import request_stop
from playground.worker import event_loop, shutdown
from playground.worker.shutdown import (
    HANDED_BACK_MESSAGE,
    hand_back_waiting,
    hand_back_waiting_now,
)
from tests.playground.helpers import decoded, make_turn, responses_of, run_turn, sse_chunks
from tests.playground.worker.conftest import celery_task, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL = "local:smollm2"
LOCAL_NAME = "Local · SmolLM2-135M"
WAITING = f"waiting for {LOCAL_NAME} — 1 ahead"
HOLDER = 10**9  # the response id of someone else's answer, which holds the one slot


@pytest.fixture
def held_slot() -> Iterator[redis.Redis]:
    """The local model's one slot, held by someone else's live answer until the test lets
    it go (``let_go``)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(f"pg:hb:{HOLDER}", 1, ex=120)
    client.zadd(f"pg:slots:{settings.PLAYGROUND_LOCAL_MODEL_URL}", {str(HOLDER): time.time()})
    yield client
    client.close()


def let_go(client: redis.Redis) -> None:
    client.delete(f"pg:hb:{HOLDER}")
    client.zrem(f"pg:slots:{settings.PLAYGROUND_LOCAL_MODEL_URL}", str(HOLDER))


@pytest.fixture
def local_model() -> Iterator[list[httpx.Request]]:
    """The local model's server: every request it gets, each answered "Slow and steady"."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = b"".join(sse_chunks(["Slow", " and", " steady"]))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{settings.PLAYGROUND_LOCAL_MODEL_URL}/chat/completions").mock(
            side_effect=answer
        )
        yield requests


def log_of(client: redis.Redis, pk: int) -> list[tuple[str, dict[str, str]]]:
    return decoded(client.xrange(response_log.log_key(pk)))


def queued_tasks(client: redis.Redis) -> list[tuple[str, list[Any]]]:
    """The tasks in the broker's queue: (name, args)."""
    tasks = []
    for message in client.lrange("celery", 0, -1):
        envelope = json.loads(message)
        args, _kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        tasks.append((envelope["headers"]["task"], args))
    return tasks


# ---------------------------------------------------------------- the longest answer


@pytest.mark.usefixtures("worker_context")
async def test_a_pane_that_waited_longer_than_the_longest_answer_still_answers_whole(
    owner: Any, held_slot: redis.Redis, local_model: list[httpx.Request], settings: Any
) -> None:
    settings.PLAYGROUND_PANE_MAX_SECONDS = 1
    turn = await sync_to_async(make_turn)(owner, [(LOCAL, {})], "Take your turn")
    [row] = await sync_to_async(responses_of)(turn)
    running = asyncio.create_task(run_turn(turn.pk))
    for _ in range(250):
        if await sync_to_async(log_of)(held_slot, row.pk):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(1.6)  # longer than the longest answer, in the queue

    await sync_to_async(let_go)(held_slot)
    await asyncio.wait_for(running, timeout=10)

    row = await Response.objects.aget(pk=row.pk)
    assert (row.status, row.text, row.error) == (Status.DONE, "Slow and steady", "")
    assert row.waited_ms >= 1600
    assert len(local_model) == 1
    assert log_of(held_slot, row.pk)[0][1] == {"k": "s", "msg": WAITING}


@pytest.mark.usefixtures("worker_context")
async def test_a_pane_that_waits_past_its_bound_ends_with_a_sentence_and_nothing_counted(
    owner: Any, held_slot: redis.Redis, local_model: list[httpx.Request], settings: Any
) -> None:
    settings.PLAYGROUND_PANE_WAIT_SECONDS = 1
    turn = await sync_to_async(make_turn)(owner, [(LOCAL, {})], "Take your turn")

    started = time.monotonic()
    await asyncio.wait_for(run_turn(turn.pk), timeout=10)

    [row] = await sync_to_async(responses_of)(turn)
    assert time.monotonic() - started >= 1
    assert (row.status, row.finish_reason, row.text) == (Status.ERROR, "wait_limit", "")
    assert row.error == (
        f"Stopped after waiting 1 s for {LOCAL_NAME}, the longest a pane may wait here; "
        "nothing was asked of it, and nothing is counted."
    )
    assert (row.input_tokens, row.output_tokens, row.usage_estimated) == (0, 0, False)
    assert local_model == []
    assert log_of(held_slot, row.pk)[-1][1] == {"k": "e", "st": "error"}
    # Its place in the queue is given back; the other answer keeps the slot.
    url = settings.PLAYGROUND_LOCAL_MODEL_URL
    assert held_slot.zrange(f"pg:queue:{url}", 0, -1) == []
    assert held_slot.zrange(f"pg:slots:{url}", 0, -1) == [str(HOLDER).encode()]


# ---------------------------------------------------------------- a worker told to stop


def test_a_worker_told_to_stop_hands_a_waiting_pane_back_and_another_answers_it_whole(
    worker_loop: Any, owner: Any, held_slot: redis.Redis, local_model: list[httpx.Request]
) -> None:
    """The turn's task has given its thread back (its one pane waits on the worker's loop,
    which Celery does not wait for); the signal handler hands the pane back before it
    returns. The task sent again is then run as another worker would run it."""
    held_slot.delete("celery")
    turn = make_turn(owner, [(LOCAL, {})], "Take your turn")
    [row] = responses_of(turn)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="celery-pool") as pool:
        pool.submit(celery_task, turn.pk, [row.pk]).result(timeout=20)  # returns: it waits
        assert wait_for(lambda: log_of(held_slot, row.pk), 5)

        hand_back_waiting_now()  # what the worker's warm shutdown runs, in its main thread

        row.refresh_from_db()
        assert row.status == Status.PENDING
        assert local_model == []  # nothing was asked
        assert queued_tasks(held_slot) == [("playground.run_turn", [turn.pk, [row.pk]])]
        url = settings.PLAYGROUND_LOCAL_MODEL_URL
        assert held_slot.zrange(f"pg:queue:{url}", 0, -1) == []
        handed = log_of(held_slot, row.pk)
        assert handed[-1][1] == {"k": "s", "msg": HANDED_BACK_MESSAGE}

        # Another worker takes the task; the other answer has ended meanwhile.
        event_loop._context.stopping = False  # type: ignore[union-attr]
        let_go(held_slot)
        [(_name, args)] = queued_tasks(held_slot)
        pool.submit(celery_task, *args).result(timeout=20)
        assert wait_for(lambda: Response.objects.get(pk=row.pk).status == Status.DONE, 10)

    row.refresh_from_db()
    assert row.text == "Slow and steady"
    assert len(local_model) == 1
    assert UsageEntry.objects.filter(response=row).count() == 1
    # One log, numbered without a gap: the first worker's lines, then the answer.
    entries = log_of(held_slot, row.pk)
    assert [entry_id for entry_id, _ in entries] == [f"0-{n}" for n in range(1, len(entries) + 1)]
    assert entries[: len(handed)] == handed
    assert response_log.merge(entries).text == row.text  # type: ignore[arg-type]
    assert entries[-1][1] == {"k": "e", "st": "done"}


@pytest.mark.usefixtures("worker_context")
async def test_a_pane_that_would_start_waiting_after_the_worker_was_told_to_stop_goes_back(
    owner: Any, held_slot: redis.Redis, local_model: list[httpx.Request]
) -> None:
    held_slot.delete("celery")
    assert await hand_back_waiting() == 0  # told to stop, with nothing waiting yet
    turn = await sync_to_async(make_turn)(owner, [(LOCAL, {})], "Take your turn")

    await asyncio.wait_for(run_turn(turn.pk), timeout=10)

    [row] = await sync_to_async(responses_of)(turn)
    assert row.status == Status.PENDING
    assert local_model == []
    assert queued_tasks(held_slot) == [("playground.run_turn", [turn.pk, [row.pk]])]
    assert log_of(held_slot, row.pk) == [("0-1", {"k": "s", "msg": HANDED_BACK_MESSAGE})]


@pytest.mark.usefixtures("worker_context")
async def test_a_pane_handed_back_and_then_stopped_ends_its_log(
    owner: Any, held_slot: redis.Redis, local_model: list[httpx.Request]
) -> None:
    """Stop ends a pending pane itself; one handed back has entries in its log already,
    and the end entry follows them (else the page would follow its log for ever)."""
    held_slot.delete("celery")
    await hand_back_waiting()
    turn = await sync_to_async(make_turn)(owner, [(LOCAL, {})], "Take your turn")
    await asyncio.wait_for(run_turn(turn.pk), timeout=10)
    [row] = await sync_to_async(responses_of)(turn)

    await sync_to_async(request_stop)([row.pk])

    row = await Response.objects.aget(pk=row.pk)
    assert (row.status, row.finish_reason) == (Status.STOPPED, "stopped")
    assert log_of(held_slot, row.pk) == [
        ("0-1", {"k": "s", "msg": HANDED_BACK_MESSAGE}),
        ("0-2", {"k": "e", "st": "stopped"}),
    ]


@pytest.mark.usefixtures("worker_context")
async def test_a_pane_that_cannot_be_queued_again_ends_with_a_sentence_and_nothing_counted(
    owner: Any,
    held_slot: redis.Redis,
    local_model: list[httpx.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broker_away(*args: Any, **kwargs: Any) -> None:
        raise OSError("Connection refused")

    monkeypatch.setattr(shutdown.app, "send_task", broker_away)
    await hand_back_waiting()
    turn = await sync_to_async(make_turn)(owner, [(LOCAL, {})], "Take your turn")

    await asyncio.wait_for(run_turn(turn.pk), timeout=10)

    [row] = await sync_to_async(responses_of)(turn)
    assert (row.status, row.error) == (Status.INTERRUPTED, shutdown.NOT_HANDED_BACK_MESSAGE)
    assert (row.input_tokens, row.output_tokens) == (0, 0)
    assert await UsageEntry.objects.filter(response=row).acount() == 1
    assert local_model == []
    assert log_of(held_slot, row.pk) == [
        ("0-1", {"k": "s", "msg": HANDED_BACK_MESSAGE}),
        ("0-2", {"k": "e", "st": "interrupted"}),
    ]
