"""The one way a response ends, whoever ends it: the worker when its answer is over, Stop
for a response no worker has started, the watchdog for one whose worker died.

The row is written first, by a conditional update from the status the caller found, so
that only one of them ends a response, and its usage is settled in the same transaction
(:func:`playground.quotas.settle`: the ledger row, the reservation given back); then its
log is closed with the end entry
(:func:`playground.live.response_log.add_end`: the entry, and the log's lifetime from
``PLAYGROUND_LOG_TTL``). A reader that sees the end entry can therefore trust the row (the
session page relies on it: it reads the rows, then the logs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from django.db import transaction
from django.utils import timezone

from playground.live import response_log
from playground.models import Response
from playground.quotas import settle

#: Closes a response's log, given the status its row now has, or "" when someone else
#: ended the row first.
CloseLog = Callable[[str], None]


def end_response(
    response_id: int, *, was: str, status: str, close_log: CloseLog, **row: Any
) -> bool:
    """End the response whose row is still ``was``: its row becomes ``status`` with
    ``row``'s fields, then ``close_log`` closes its log. Returns whether this call ended
    the row."""
    with transaction.atomic():
        ended = bool(
            Response.objects.filter(pk=response_id, status=was).update(
                status=status, finished_at=timezone.now(), **row
            )
        )
        if ended:
            # Its ledger row, and its reservation given back less what it used: once, as
            # only one caller ends a row.
            settle(response_id)
    close_log(status if ended else "")
    return ended


def close_log_now(client: redis.Redis, response_id: int, seq: int | None) -> CloseLog:
    """Close the log at once, as entry ``seq`` (None: it has its end already), when this
    call ended the row; a row someone else ended is theirs to close (Stop, the watchdog)."""

    def close(status: str) -> None:
        if status and seq is not None:
            with client.pipeline(transaction=False) as pipe:
                response_log.add_end(pipe, response_id, seq, status)
                # A dying worker's late write may have taken the id: its log has its end.
                pipe.execute(raise_on_error=False)

    return close
