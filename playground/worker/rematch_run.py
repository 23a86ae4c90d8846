"""A rematch's turns, in the worker (``playground.rematch`` starts it): each turn asked of the
new panes once the one before has ended, reserved against the quotas like a Send."""

from __future__ import annotations

from typing import Any

from playground import answers, quotas
from playground.live.announce import announce_answers
from playground.models import Pane, Response, Session, Status, Turn
from playground.worker import event_loop
from playground.worker.runner import claim_responses, stream_responses


def run(session_id: int, pane_ids: list[int], first_ids: list[int]) -> None:
    """In the worker: the rematch's turns in order, each once the one before has ended."""
    session = Session.objects.select_related("owner").get(pk=session_id)
    user = session.owner if session.owner.is_active else None
    turns = list(session.turns.order_by("index"))
    asking = list(Pane.objects.filter(pk__in=pane_ids).order_by("position"))
    ids: list[int] | None = first_ids
    for turn in turns:
        if ids is None:
            ids = _ask(user, session, turn, asking)
            if not ids:
                return
        # Its panes are not handed back one by one when the worker stops: the turns go
        # in order, each after the one before.
        panes = claim_responses(turn.pk, ids, requeue=False)
        if panes:
            event_loop.run(stream_responses(panes))
        # A pane the person stopped, or whose session went, asks no further.
        stopped = set(
            Response.objects.filter(pk__in=ids, status=Status.STOPPED).values_list(
                "pane_id", flat=True
            )
        )
        asking = [p for p in asking if p.pk not in stopped]
        if not asking or not Session.objects.filter(pk=session_id, deleted_at=None).exists():
            return
        ids = None


def _ask(user: Any, session: Session, turn: Turn, panes: list[Pane]) -> list[int]:
    """The panes' pending answers to ``turn``, announced; or, refused, their answers saying
    why (and nothing more is asked)."""
    try:
        if user is None:
            raise answers.SteerRefused("The session's owner can no longer sign in.")
        compose = answers.compose_for(user, turn, panes)
        new = answers.save_answers(session, turn, panes, compose)
    except (answers.SteerRefused, quotas.QuotaRefused) as refused:
        ended = Response.objects.bulk_create(
            Response(
                turn=turn,
                pane=p,
                model_key=p.model_key,
                display_name=p.model_key,
                status=Status.ERROR,
                error=f"The rematch stopped here: {refused}",
                finish_reason="error",
            )
            for p in panes
        )
        announce_answers(session.pk, ended)
        return []
    announce_answers(session.pk, new)
    return [r.pk for r in new]
