"""Marks a pane "interrupted" when its worker died mid-answer.

A streaming pane's worker refreshes a heartbeat key in Redis every 1.5 s (5 s TTL). Whoever
looks at a pane (the websocket follower every 2 s, a page load, and every
PLAYGROUND_SWEEP_SECONDS one worker's sweep, for the panes nobody watches) calls
:func:`reap_dead`; a
pane marked streaming whose heartbeat has been gone for two looks about 2 s apart is ended
with the text its log holds, or its row's checkpoint when that holds more (Redis lost the
log). The update is conditional, so a pane that ended meanwhile is left alone.
"""

from __future__ import annotations

import time

from redis import Redis

from playground.live import response_log
from playground.live.db_threads import off_request_thread
from playground.live.response_end import close_log_now, end_response
from playground.models import ACTIVE_STATUSES, Response, Status
from playground.redis_sync import redis_client

INTERRUPTED_MESSAGE = "The worker streaming this answer stopped; this is what had arrived."
# How long a pane must have been without a heartbeat before it is ended (see _gone_a_while).
CONFIRM_S = 1.9
NOTE_TTL_S = 10  # a note older than this is stale: the pane's heartbeat came back meanwhile


def without_heartbeat_sync() -> list[int]:
    """Every streaming response whose heartbeat is gone now (one query on the index of
    active responses, one MGET): what a look by the worker's sweep (worker/sweep.py) hands
    to :func:`reap_dead_sync`, which looks again and reads their text."""
    streaming = list(Response.objects.filter(status=Status.STREAMING).values_list("pk", flat=True))
    if not streaming:
        return []
    alive = redis_client().mget([response_log.heartbeat_key(pk) for pk in streaming])
    return [pk for pk, beat in zip(streaming, alive, strict=True) if beat is None]


def reap_dead_sync(response_ids: list[int]) -> list[int]:
    streaming = {
        pk: (text, reasoning)
        for pk, text, reasoning in Response.objects.filter(
            pk__in=response_ids, status=Status.STREAMING
        ).values_list("pk", "text", "reasoning")
    }
    if not streaming:
        return []
    redis = redis_client()
    alive = redis.mget([response_log.heartbeat_key(pk) for pk in streaming])
    missing = [pk for pk, beat in zip(streaming, alive, strict=True) if beat is None]
    reaped = []
    for pk in _gone_a_while(redis, missing):
        batch = response_log.merge(redis.xrange(response_log.log_key(pk)))
        # The log, or the checkpoint in the row when Redis lost the log (or its last
        # second): both hold the start of the same answer, so the longer holds more.
        checkpoint_text, checkpoint_reasoning = streaming[pk]
        if end_response(
            pk,
            was=Status.STREAMING,
            status=Status.INTERRUPTED,
            close_log=close_log_now(redis, pk, None if batch.ended else batch.last_seq + 1),
            text=max(batch.text, checkpoint_text, key=len),
            reasoning=max(batch.reasoning, checkpoint_reasoning, key=len),
            error=INTERRUPTED_MESSAGE,
            ttft_ms=batch.ttft_ms,
            waited_ms=batch.waited_ms,
            total_ms=batch.elapsed_ms,
            output_tokens=batch.tokens,
            usage_estimated=True,
            finish_reason="interrupted",
        ):
            reaped.append(pk)
    return reaped


def _gone_a_while(redis: Redis, missing: list[int]) -> list[int]:
    """Those of ``missing`` (no heartbeat now) that had none ``CONFIRM_S`` ago either.

    A restart of Redis loses every heartbeat at once while the workers are well; each
    beats again within HEARTBEAT_EVERY_S of its reconnection. So the first look without a
    heartbeat only notes the time (in Redis: a restart forgets the note too), and a later
    look ends the pane."""
    if not missing:
        return []
    now = time.time()
    with redis.pipeline(transaction=False) as pipe:
        for pk in missing:
            pipe.set(_suspect_key(pk), now, nx=True, ex=NOTE_TTL_S)
            pipe.get(_suspect_key(pk))
        replies = pipe.execute()
    noted = replies[1::2]
    return [
        pk
        for pk, since in zip(missing, noted, strict=True)
        if since is not None and now - float(since) >= CONFIRM_S
    ]


def _suspect_key(response_id: int) -> str:
    return f"{response_log.PREFIX}:nohb:{response_id}"


def ended_of_sync(response_ids: list[int]) -> list[int]:
    """Those of ``response_ids`` whose row has ended: for a follower still waiting for
    their logs' end entries, which a Redis restarted without its last second may have
    lost (or a worker that died between writing the row and the log never wrote)."""
    ended = Response.objects.filter(pk__in=response_ids).exclude(status__in=ACTIVE_STATUSES)
    return list(ended.values_list("pk", flat=True))


# Its connection is closed after each look, as a request's is (live/db_threads.py).
reap_dead = off_request_thread(reap_dead_sync)
ended_of = off_request_thread(ended_of_sync)
