"""Stop one pane, or every pane of a session. Cooperative: a flag in Redis that the worker
sees within a fraction of a second; it then closes the provider connection and keeps the
partial text. A response no worker has started yet is stopped here and then."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from playground.access import pane_for_user, session_for_user
from playground.live import response_log
from playground.live.response_end import close_log_now, end_response
from playground.models import ACTIVE_STATUSES, Response, Status
from playground.redis_sync import redis_client


def request_stop(response_ids: list[int]) -> None:
    if not response_ids:
        return
    redis = redis_client()
    with redis.pipeline(transaction=False) as pipe:
        for pk in response_ids:
            pipe.set(response_log.stop_key(pk), 1, ex=response_log.STOP_TTL_S)
        for pk in response_ids:
            # A pending pane's log is empty, unless a worker that stopped handed it back.
            pipe.xrevrange(response_log.log_key(pk), count=1)
        lasts = pipe.execute()[len(response_ids) :]
    for pk, last in zip(response_ids, lasts, strict=True):
        # A pane no worker has claimed yet ends here; a streaming one is its worker's to end.
        close_log = close_log_now(redis, pk, seq=response_log.last_seq(last) + 1)
        end_response(
            pk,
            was=Status.PENDING,
            status=Status.STOPPED,
            close_log=close_log,
            finish_reason="stopped",
        )


@login_required
@require_POST
def stop_pane(request: HttpRequest, pane_id: int) -> HttpResponse:
    pane = pane_for_user(request.user, pane_id)
    ids = list(pane.responses.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    request_stop(ids)
    return HttpResponse(status=204)


@login_required
@require_POST
def stop_session(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    ids = list(
        Response.objects.filter(turn__session=session, status__in=ACTIVE_STATUSES).values_list(
            "pk", flat=True
        )
    )
    request_stop(ids)
    return HttpResponse(status=204)
