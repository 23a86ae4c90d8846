"""The one way a pane ends, whoever ends it: the worker when its answer is over, Stop for a
pane no worker has started, the watchdog for a pane whose worker died.

The row is written first, by a conditional update from the status the caller found, so
that only one of them ends a pane; then the end entry goes to the response's log, which then
lives ``PLAYGROUND_LOG_TTL`` more seconds. A reader that sees the end entry can therefore
trust the row (the session page relies on it: it reads the rows, then the logs).
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.utils import timezone

from playground.live import response_log
from playground.models import Response


def end_response(
    client: redis.Redis,
    response_id: int,
    *,
    was: str,
    status: str,
    seq: int | None,
    end_log_anyway: bool = False,
    **row: Any,
) -> bool:
    """End the pane whose row is still ``was``: its row becomes ``status`` with ``row``'s
    fields, then its log gets the end entry as entry ``seq`` (None: the log has one).

    Returns whether this call ended the row. When someone else ended it first, the log is
    left alone, unless ``end_log_anyway`` (the worker, the only writer of the response's log,
    closes its log whatever became of the row: the end entry then carries no status).
    """
    ended = bool(
        Response.objects.filter(pk=response_id, status=was).update(
            status=status, finished_at=timezone.now(), **row
        )
    )
    if seq is not None and (ended or end_log_anyway):
        key = response_log.log_key(response_id)
        end = {"k": "e", "st": status if ended else ""}
        with client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, end, id=response_log.entry_id(seq))  # type: ignore[arg-type]
            pipe.expire(key, settings.PLAYGROUND_LOG_TTL)
            pipe.delete(response_log.heartbeat_key(response_id))
            # A dying worker's late write may have taken the id: then its log has its end.
            pipe.execute(raise_on_error=False)
    return ended
