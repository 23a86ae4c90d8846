"""The worker's own round of the watchdog: panes nobody watches are ended too.

The watchdog (playground.live.watchdog) runs when someone looks at a pane: a page load, a
live page's follower. A pane whose worker died while nobody watched would otherwise keep
its quota reservation, and its turn would count as answering, until someone opened its
page. So every worker runs this sweep on its event loop, every PLAYGROUND_SWEEP_SECONDS
(and once as it starts, a worker started again after a crash cleaning up after it), and a
lock in Redis lets one worker sweep at a time: the first to take it in an interval. A
sweep finds the streaming panes without a heartbeat, notes them, and about two seconds
later ends those still without one "interrupted", with the longer of their log's text and
their checkpoint, settled once (the watchdog's two looks; its ends are conditional, so a
page's look at the same moment changes nothing). A pane is so ended at most about
HEARTBEAT_TTL_S + PLAYGROUND_SWEEP_SECONDS + CONFIRM_S after its worker died.

The same round sends again the turns that a worker took off the queue and died with before
it claimed them (:func:`requeue_lost_turns_sync`); the broker would give them back only
after its visibility timeout, an hour.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings

from playground.celery import app
from playground.live import response_log, watchdog
from playground.models import Response, Status
from playground.redis_sync import redis_client
from playground.worker import event_loop

log = logging.getLogger(__name__)

LOCK = f"{response_log.PREFIX}:sweep"

# Where kombu's Redis transport keeps the messages that workers have taken and not yet
# acknowledged (its default key names; the broker is REDIS_URL, with no key prefix): the
# message by delivery tag, and the time each was taken.
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
# A turn still pending this long after a worker took its task is taken for lost: a claim
# comes within a second or two of delivery (a claim the database refused is sent again
# within about 30 s as a new task, the first one acknowledged).
LOST_AFTER_S = 60
LOST_PER_ROUND = 100  # the most deliveries one round looks at


def start() -> None:
    """Sweep on this process's worker loop from now on (the worker's ready signal)."""
    if settings.PLAYGROUND_SWEEP_SECONDS:
        asyncio.run_coroutine_threadsafe(sweep_forever(), event_loop.get_loop())


async def sweep_forever() -> None:
    every = settings.PLAYGROUND_SWEEP_SECONDS
    redis = event_loop.context().redis
    while True:
        try:
            ended = await sweep(redis, every)
        except Exception as error:  # Redis or the database away: the next round tries again
            log.warning("the sweep failed: %s", type(error).__name__)
        else:
            if ended:
                log.warning("sweep: ended %s panes whose worker stopped", len(ended))
        await asyncio.sleep(every)


async def sweep(redis: aioredis.Redis, every: float) -> list[int]:
    """One round, if no other worker has swept in the last ``every`` seconds; returns the
    responses it ended."""
    if not await redis.set(LOCK, 1, nx=True, ex=max(1, round(every))):
        return []
    resent = await sync_to_async(requeue_lost_turns_sync, thread_sensitive=False)()
    if resent:
        log.warning("sweep: sent again %s turns whose worker stopped before claiming them", resent)
    suspects = await sync_to_async(watchdog.without_heartbeat_sync, thread_sensitive=False)()
    if not suspects:
        return []
    # The first look notes them (and ends any a page noted a while ago); the second, once
    # a worker that is well would have beaten again, ends the rest.
    ended = await watchdog.reap_dead(suspects)
    await asyncio.sleep(watchdog.CONFIRM_S + 0.1)
    return ended + await watchdog.reap_dead([pk for pk in suspects if pk not in ended])


def requeue_lost_turns_sync(now: float | None = None) -> list[int]:
    """Send again, once, each turn whose task a worker took off the queue more than
    LOST_AFTER_S ago and has not acknowledged, while its panes are still pending; returns
    the turns sent again.

    The rule keeps duplicates bounded whatever the queue's backlog: a task still waiting in
    the queue is never looked at (it is not among the messages taken), so a long backlog
    sends nothing again; a task taken by a worker that is well is acknowledged once its
    panes are claimed, or holds streaming panes, not pending ones; and each delivery is sent
    again at most once (a marker in Redis outlives the broker's visibility timeout). When the
    broker gives the lost message back after that timeout, its claim finds nothing pending
    (the claim is a conditional update) and it does nothing: at most one extra task per
    lost delivery, and that one idle."""
    client = redis_client()
    cutoff = (time.time() if now is None else now) - LOST_AFTER_S
    tags: list[bytes] = client.zrangebyscore(  # type: ignore[assignment]
        UNACKED_INDEX, "-inf", cutoff, start=0, num=LOST_PER_ROUND
    )
    if not tags:
        return []
    messages: list[bytes | None] = client.hmget(UNACKED, tags)  # type: ignore[assignment]
    taken = {}
    for tag, raw in zip(tags, messages, strict=True):
        turn = _run_turn_args(raw)
        if turn is not None:
            taken[response_log.text(tag)] = turn
    if not taken:
        return []
    pending: dict[int, set[int]] = {}
    for turn_id, pk in Response.objects.filter(
        turn_id__in={turn_id for turn_id, _ids in taken.values()}, status=Status.PENDING
    ).values_list("turn_id", "pk"):
        pending.setdefault(turn_id, set()).add(pk)
    resent = []
    marker_s = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600) + 600
    for delivery, (turn_id, ids) in taken.items():
        still = pending.get(turn_id, set())
        left = sorted(still & set(ids) if ids is not None else still)
        marker = f"{response_log.PREFIX}:resent:{delivery}"
        if not left or not client.set(marker, 1, nx=True, ex=marker_s):
            continue
        app.send_task("playground.run_turn", args=[turn_id, left])  # by name, as shutdown's
        resent.append(turn_id)
    return resent


def _run_turn_args(raw: bytes | None) -> tuple[int, list[int] | None] | None:
    """A taken message's turn and response ids, if it is a run_turn task (kombu keeps it
    as ``[message, exchange, routing key]``; Celery's body is ``[args, kwargs, embed]``)."""
    try:
        message: dict[str, Any] = json.loads(raw or b"null")[0]
        if message["headers"]["task"] != "playground.run_turn":
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        ids = args[1] if len(args) > 1 else None
        return int(args[0]), None if ids is None else [int(i) for i in ids]
    except (ValueError, TypeError, KeyError, IndexError):
        return None  # not a message of ours, or of another shape: left to the broker
