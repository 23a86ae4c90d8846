"""Rematch: every turn of a saved session asked again of other models, beside the answers it
already has.

The rematch is a new session (a fork of the whole one) with the old panes and their answers
as they were, and a new pane per model picked. The new panes answer turn after turn, each
with its own history as the session's context policy has it, so the old and the new
conversations can be read side by side. Each turn of theirs runs like a Send: its worst
case is reserved against the quotas first; a refusal ends the rematch there with the
sentence in those panes. The web request saves the first turn's answers (so a refusal is
said at once); one worker task runs the turns in order (``playground.tasks.run_rematch``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from playground import quotas, steering
from playground.forking import fork_session
from playground.models import ACTIVE_STATUSES, Pane, Response, Session, Status, Turn


class RematchRefused(Exception):
    """The rematch cannot start; the message is the sentence."""


def start(user: Any, source: Session, model_keys: list[str]) -> Session:
    """The rematch session, its first turn's new answers saved and its task enqueued."""
    from playground.tasks import run_rematch

    keys = [k for k in model_keys if k]
    if not keys:
        raise RematchRefused("Pick at least one model to rematch against.")
    turns = list(source.turns.order_by("index"))
    if not turns:
        raise RematchRefused("This session has no turns to ask again yet.")
    showing = source.panes.filter(removed=False).count()
    room = settings.PLAYGROUND_MAX_PANES - showing
    if len(keys) > room:
        raise RematchRefused(
            f"A comparison holds at most {settings.PLAYGROUND_MAX_PANES} models; this one has "
            f"{showing}, so pick at most {max(room, 0)}."
        )
    if Response.objects.filter(turn__session=source, status__in=ACTIVE_STATUSES).exists():
        raise RematchRefused("This session is still answering; wait for it or stop it first.")
    title = f"Rematch: {source.title or 'Session'}"[:200]
    with transaction.atomic():
        copy = fork_session(source, int(user.pk), None, title=title)
        last = max(copy.panes.values_list("position", flat=True), default=-1)
        panes = Pane.objects.bulk_create(
            Pane(session=copy, position=last + 1 + n, model_key=key) for n, key in enumerate(keys)
        )
        first = copy.turns.get(index=0)
        try:
            compose = steering.compose_for(user, first, panes)
            new = steering.save_answers(copy, first, panes, compose)
        except (steering.SteerRefused, quotas.QuotaRefused) as refused:
            raise RematchRefused(str(refused)) from None  # and the copy is rolled back
    run_rematch.delay(copy.pk, [p.pk for p in panes], [r.pk for r in new])
    return copy


def run(session_id: int, pane_ids: list[int], first_ids: list[int]) -> None:
    """In the worker: the rematch's turns in order, each once the one before has ended."""
    from playground.worker import event_loop
    from playground.worker.runner import claim_responses, stream_responses

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
        panes = claim_responses(turn.pk, ids)
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
            raise steering.SteerRefused("The session's owner can no longer sign in.")
        compose = steering.compose_for(user, turn, panes)
        new = steering.save_answers(session, turn, panes, compose)
    except (steering.SteerRefused, quotas.QuotaRefused) as refused:
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
        steering.announce_answers(session.pk, ended)
        return []
    steering.announce_answers(session.pk, new)
    return [r.pk for r in new]
