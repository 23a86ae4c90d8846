"""Marks a pane "interrupted" when its worker died mid-answer.

A streaming pane's worker refreshes a heartbeat key in Redis every 1.5 s (6 s TTL). Whoever
looks at a pane (the websocket follower every 2 s, a page load) calls :func:`reap_dead`; a
pane marked streaming whose heartbeat is gone is ended with the text its log holds. The
update is conditional, so a pane that ended meanwhile is left alone.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from playground.live import response_log
from playground.live.response_end import close_log_now, end_response
from playground.models import Response, Status
from playground.redis_sync import redis_client

INTERRUPTED_MESSAGE = "The worker streaming this answer stopped; this is what had arrived."


def reap_dead_sync(response_ids: list[int]) -> list[int]:
    streaming = list(
        Response.objects.filter(pk__in=response_ids, status=Status.STREAMING).values_list(
            "pk", flat=True
        )
    )
    if not streaming:
        return []
    redis = redis_client()
    alive = redis.mget([response_log.heartbeat_key(pk) for pk in streaming])
    reaped = []
    for pk, beat in zip(streaming, alive, strict=True):
        if beat is not None:
            continue
        batch = response_log.merge(redis.xrange(response_log.log_key(pk)))
        if end_response(
            pk,
            was=Status.STREAMING,
            status=Status.INTERRUPTED,
            close_log=close_log_now(redis, pk, None if batch.ended else batch.last_seq + 1),
            text=batch.text,
            reasoning=batch.reasoning,
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


reap_dead = sync_to_async(reap_dead_sync, thread_sensitive=False)
