"""A pane's answer before it starts: what a Send, a regenerate and a rematch each save.

The pane's model, parameters and key as they are now (:func:`compose_for`, read like the
compose form), the worst case reserved against the quotas under the session's row lock
(:func:`save_answers`), and the row (:func:`pending_answer`: what is sent, whose key
answers, what was reserved).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from playground import quotas
from playground.compose import Compose, PaneSpec, key_chooser
from playground.credentials import KeyRefused
from playground.models import ACTIVE_STATUSES, Pane, Response, Session, Turn
from playground.own_models import models_for_user
from playground.teams import active_team


class SteerRefused(Exception):
    """The step cannot be taken; the message is the sentence."""


def compose_for(user: Any, turn: Turn, panes: list[Pane]) -> Compose:
    """The Send ``panes`` would make of ``turn`` now (their models, parameters and keys as
    they are now), read like the form."""
    models = models_for_user(user, picked=[p.model_key for p in panes])
    specs = [
        PaneSpec(
            p.position,
            p.model_key,
            models.get(p.model_key),
            {},
            params=dict(p.params),
            picked_key=p.credential_id,
        )
        for p in panes
    ]
    team = active_team(user)
    chooser = key_chooser(user, team, specs)
    for pane in specs:
        if pane.model is None:
            raise SteerRefused(f"{pane.model_key} is no longer available here.")
        try:
            pane.key = chooser.choose(pane.model, pane.picked_key)
        except KeyRefused as refused:
            raise SteerRefused(f"{pane.model.display_name}: {refused}") from None
    return Compose(
        turn.prompt, turn.system_prompt, specs, [], list(turn.tools), list(turn.images), team
    )


def save_answers(
    session: Session,
    turn: Turn,
    panes: list[Pane],
    compose: Compose,
    replacing: list[Response] | None = None,
) -> list[Response]:
    """New pending answers of ``panes`` to ``turn``, their worst case reserved against the
    quotas (or :class:`quotas.QuotaRefused`, and nothing changes); ``replacing``: the
    answers they replace."""
    old = list(replacing or [])
    with transaction.atomic():
        if connection.features.has_select_for_update:
            Session.objects.select_for_update().filter(pk=session.pk).first()
        # Read again under the lock: two clicks at once regenerate once.
        still = Response.objects.filter(pk__in=[r.pk for r in old], replaced=False).exclude(
            status__in=ACTIVE_STATUSES
        )
        if old and still.count() != len(old):
            raise SteerRefused("That answer was already answered again.")
        showing = session.panes.filter(removed=False).annotate(**quotas.HISTORY)
        history = quotas.pane_histories(
            {p.position: p for p in showing},
            session.context_policy,
            [p.position for p in compose.panes],
        )
        plan = quotas.plan_turn(int(session.owner_id), compose, history)
        reserved = quotas.reserve(plan)
        new = Response.objects.bulk_create(
            pending_answer(turn, pane, spec, worst, held)
            for pane, spec, worst, held in zip(
                panes, compose.panes, plan.panes, reserved, strict=True
            )
        )
        if old:
            Response.objects.filter(pk__in=[r.pk for r in old]).update(replaced=True)
        if turn.chosen_id in {r.pk for r in old}:
            Turn.objects.filter(pk=turn.pk).update(chosen=None)
        session.save(update_fields=["updated_at"])
    for r in old:
        r.replaced = True
    return new


def pending_answer(
    turn: Turn, pane: Pane, spec: PaneSpec, worst: quotas.PaneCost, held: quotas.Reserved
) -> Response:
    """A pane's answer to a turn, before it starts: what is sent (a quota's bound on the
    answer's length included), whose key answers, and what was reserved for it."""
    return Response(
        turn=turn,
        pane=pane,
        model_key=spec.model_key,
        display_name=spec.model.display_name if spec.model else spec.model_key,
        params={**spec.params, "max_tokens": worst.max_tokens} if worst.max_tokens else spec.params,
        credential_id=spec.key.credential_id,
        key_scope=spec.key.scope,
        key_label=spec.key.says,
        reserved_tokens=held.tokens,
        reserved_cost=held.cost,
        quota_counters=held.counters,
    )
