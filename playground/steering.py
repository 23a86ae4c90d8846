"""Steering a conversation between turns: regenerate one pane or retry the failed ones,
continue from a chosen answer, leave answers out of the shared history, and the session's
context policy (what each model sees of the conversation; playground.worker.runner).

A regenerated answer replaces the pane's answer to the same turn: the old one stays on
record, shown folded as an earlier answer, and counts nowhere any more. It runs like any
Send: fair use, the quotas' reservation, the person's keys as they are now.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection, transaction
from redis.typing import EncodableT, FieldT

from playground import quotas
from playground.access import user_id
from playground.compose import Compose, PaneSpec, key_chooser
from playground.credentials import KeyRefused
from playground.live import fragments, response_log
from playground.models import (
    ACTIVE_STATUSES,
    ContextPolicy,
    Pane,
    Response,
    Session,
    Status,
    Turn,
)
from playground.own_models import models_for_user
from playground.redis_sync import redis_client
from playground.tasks import run_turn
from playground.teams import active_team

FAILED = (Status.ERROR, Status.INTERRUPTED)


class SteerRefused(Exception):
    """The step cannot be taken; the message is the sentence."""


def last_turn(session: Session) -> Turn | None:
    return session.turns.order_by("-index").first()


def answers_of(turn: Turn) -> list[Response]:
    """The turn's current answers (not replaced), in pane order."""
    return list(
        turn.responses.filter(replaced=False).select_related("pane").order_by("pane__position")
    )


def rerun(user: Any, session: Session, old: list[Response]) -> list[Response]:
    """Answer the session's last turn again in the panes of ``old`` (ended answers of it),
    each with its pane's model, parameters and key; return the new answers, already on
    their way to a worker and announced to the session's pages."""
    turn = last_turn(session)
    if not old or turn is None:
        raise SteerRefused("There is nothing to answer again.")
    if any(r.turn_id != turn.pk for r in old):
        raise SteerRefused(
            "Only answers to the last turn can be answered again; fork the "
            "session from an earlier turn to take it another way."
        )
    if any(r.status in ACTIVE_STATUSES for r in old):
        raise SteerRefused("That pane is still answering; stop it first.")
    if any(r.pane.removed for r in old):
        raise SteerRefused("That pane was removed from the comparison.")
    compose = compose_for(user, turn, [r.pane for r in old])
    client, person = redis_client(), user_id(user)
    too_many = quotas.count_send(client, person)
    if too_many:
        raise SteerRefused(too_many)
    try:
        new = save_answers(session, turn, [r.pane for r in old], compose, replacing=old)
    except (SteerRefused, quotas.QuotaRefused):
        quotas.uncount_send(client, person)
        raise
    run_turn.delay(turn.pk, [r.pk for r in new])
    announce_answers(session.pk, new, replacing=old)
    return new


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


def failed_answers(session: Session) -> list[Response]:
    """The last turn's answers that failed (an error, or a worker that stopped)."""
    turn = last_turn(session)
    if turn is None:
        return []
    return [r for r in answers_of(turn) if r.status in FAILED and not r.pane.removed]


def choose(session: Session, response: Response) -> Response | None:
    """Make ``response`` the answer its turn continues from (again: no longer); returns the
    answer that was chosen before, if another."""
    if response.replaced or response.status in ACTIVE_STATUSES:
        raise SteerRefused("Only a finished answer can be continued from.")
    turn = response.turn
    before = turn.chosen
    turn.chosen = None if turn.chosen_id == response.pk else response
    turn.save(update_fields=["chosen"])
    return before if before is not None and before.pk != response.pk else None


def set_excluded(response: Response, excluded: bool) -> None:
    response.excluded = excluded
    response.save(update_fields=["excluded"])


def set_policy(session: Session, policy: str) -> None:
    if policy not in ContextPolicy.values:
        raise SteerRefused("Pick what the models see of the conversation from the list.")
    session.context_policy = policy
    session.save(update_fields=["context_policy", "updated_at"])


def joins_note(policy: str, earlier_turns: int) -> str:
    """What a model added to a session with ``earlier_turns`` turns sees of them."""
    if not earlier_turns:
        return ""
    turns = f"{earlier_turns} earlier turn{'s' if earlier_turns != 1 else ''}"
    if policy == ContextPolicy.ALL:
        return f"Joins now: it sees every answer of the {turns} that was not excluded."
    if policy == ContextPolicy.CHOSEN:
        return f"Joins now: it sees the answers chosen in the {turns}."
    return f"Joins now: it sees none of the {turns}, only answers chosen to continue from."
