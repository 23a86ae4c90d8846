"""Announcing answers added to turns a session's pages already show (steering, rematch): an
entry on the session's control stream that its followers send on (``live.consumer``)."""

from __future__ import annotations

from django.conf import settings
from redis.typing import EncodableT, FieldT

from playground.live import fragments, response_log
from playground.models import Response
from playground.redis_sync import redis_client


def announce_answers(
    session_id: int,
    new: list[Response],
    replacing: list[Response] | None = None,
) -> None:
    """Tell the session's pages of answers added to a turn they show: each new one goes
    after the answer it replaces (which folds away), or at the end of its pane."""
    if replacing:
        html = fragments.again_articles(list(zip(replacing, new, strict=True)))
    else:
        html = fragments.turn_articles(new)
    entry: dict[FieldT, EncodableT] = {
        "answers": ",".join(str(r.pk) for r in new),
        "last": max(r.pk for r in new),
        "html": html,
    }
    control = response_log.control_key(session_id)
    with redis_client().pipeline(transaction=False) as pipe:
        pipe.xadd(control, entry, maxlen=1000, approximate=True)
        pipe.expire(control, settings.PLAYGROUND_LOG_TTL)
        pipe.execute()
