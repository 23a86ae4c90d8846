"""Steering a conversation between turns: regenerate one pane or retry the failed ones,
continue from a chosen answer, leave answers out of the shared history, and the session's
context policy (what each model sees of the conversation; playground.worker.runner).

A regenerated answer replaces the pane's answer to the same turn: the old one stays on
record, shown folded as an earlier answer, and counts nowhere any more. It runs like any
Send: fair use, the quotas' reservation, the person's keys as they are now.
"""

from __future__ import annotations

from typing import Any

from playground import answers, quotas
from playground.access import user_id
from playground.answers import SteerRefused
from playground.models import ACTIVE_STATUSES, ContextPolicy, Response, Session, Status, Turn
from playground.redis_sync import redis_client

__all__ = ["SteerRefused"]

FAILED = (Status.ERROR, Status.INTERRUPTED)


def last_turn(session: Session) -> Turn | None:
    return session.turns.order_by("-index").first()


def answers_of(turn: Turn) -> list[Response]:
    """The turn's current answers (not replaced), in pane order."""
    return list(
        turn.responses.filter(replaced=False).select_related("pane").order_by("pane__position")
    )


def rerun(user: Any, session: Session, old: list[Response]) -> list[Response]:
    """Answer the session's last turn again in the panes of ``old`` (ended answers of it),
    each with its pane's model, parameters and key; return the new answers (the caller
    hands them to a worker and announces them: ``views.steer``)."""
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
    compose = answers.compose_for(user, turn, [r.pane for r in old])
    client, person = redis_client(), user_id(user)
    too_many = quotas.count_send(client, person)
    if too_many:
        raise SteerRefused(too_many)
    try:
        new = answers.save_answers(session, turn, [r.pane for r in old], compose, replacing=old)
    except (SteerRefused, quotas.QuotaRefused):
        quotas.uncount_send(client, person)
        raise
    return new


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
    if turn.chosen_id != response.pk and not response.text and not response.tool_calls:
        raise SteerRefused("This answer is empty; continue from one that has text.")
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
