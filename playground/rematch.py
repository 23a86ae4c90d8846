"""Rematch: every turn of a saved session asked again of other models, beside the answers it
already has.

The rematch is a new session (a fork of the whole one) with the old panes and their answers
as they were, and a new pane per model picked. The new panes answer turn after turn, each
with its own history as the session's context policy has it, so the old and the new
conversations can be read side by side. Each turn of theirs runs like a Send: its worst
case is reserved against the quotas first; a refusal ends the rematch there with the
sentence in those panes. The web request saves the first turn's answers (so a refusal is
said at once); one worker task runs the turns in order (``tasks.run_rematch``, which runs
``worker.rematch_run``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from playground import answers, quotas
from playground.forking import fork_session
from playground.models import ACTIVE_STATUSES, Pane, Response, Session
from playground.tasks import hand_to_worker, run_rematch


class RematchRefused(Exception):
    """The rematch cannot start; the message is the sentence."""


def start(user: Any, source: Session, model_keys: list[str]) -> Session:
    """The rematch session, its first turn's new answers saved and its task enqueued."""
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
            compose = answers.compose_for(user, first, panes)
            new = answers.save_answers(copy, first, panes, compose)
        except (answers.SteerRefused, quotas.QuotaRefused) as refused:
            raise RematchRefused(str(refused)) from None  # and the copy is rolled back
    firsts = [r.pk for r in new]
    hand_to_worker(firsts, run_rematch, copy.pk, [p.pk for p in panes], firsts)
    return copy
