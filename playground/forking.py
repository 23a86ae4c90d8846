"""Fork and duplicate: a new session that starts as a copy of another, up to one of its turns.

The copy is the person's own from then on: their keys and quota answer what they send next.
Panes keep their models and parameters; answers keep their texts, numbers and costs (what
they cost when they were made). Answers still streaming are copied with what has arrived so
far. A key picked for a pane, and the words saying whose key answered, go along only when
the copy is the same person's.
"""

from __future__ import annotations

from django.db import transaction

from playground.live import response_log
from playground.media import link_copies
from playground.models import ACTIVE_STATUSES, Pane, Response, Session, Status, Turn
from playground.redis_sync import redis_client

STILL_ANSWERING = "Still answering when this was copied; this is what had arrived."


def fork_session(
    source: Session, owner_id: int, through_index: int | None = None, title: str | None = None
) -> Session:
    """A new session of ``owner_id`` holding ``source``'s turns up to ``through_index``
    (0-based; None: all of them) and its current panes."""
    same_owner = source.owner_id == owner_id
    turns = list(source.turns.all())
    if through_index is not None:
        turns = [t for t in turns if t.index <= through_index]
    panes = list(source.panes.filter(removed=False))
    responses = list(
        Response.objects.filter(turn__in=turns, pane__in=panes, replaced=False).order_by(
            "turn__index", "pane__position"
        )
    )
    live = _live_texts([r.pk for r in responses if r.status in ACTIVE_STATUSES])
    with transaction.atomic():
        copy = Session.objects.create(
            owner_id=owner_id,
            title=title or source.title,
            system_prompt=source.system_prompt,
            context_policy=source.context_policy,
            forked_from=source,
            forked_at_turn=through_index,
        )
        new_panes = Pane.objects.bulk_create(
            Pane(
                session=copy,
                position=p.position,
                model_key=p.model_key,
                params=p.params,
                credential_id=p.credential_id if same_owner else None,
            )
            for p in panes
        )
        pane_of = {old.pk: new for old, new in zip(panes, new_panes, strict=True)}
        new_turns = Turn.objects.bulk_create(
            Turn(
                session=copy,
                index=t.index,
                prompt=t.prompt,
                system_prompt=t.system_prompt,
                tools=t.tools,
                images=t.images,
                media=t.media,
                team_id=t.team_id if same_owner else None,
            )
            for t in turns
        )
        turn_of = {old.pk: new for old, new in zip(turns, new_turns, strict=True)}
        link_copies({old: new.pk for old, new in turn_of.items() if new.media})
        copies = Response.objects.bulk_create(
            _copy_response(r, turn_of[r.turn_id], pane_of[r.pane_id], same_owner, live)
            for r in responses
        )
        response_of = {old.pk: new.pk for old, new in zip(responses, copies, strict=True)}
        for old_turn in turns:
            if old_turn.chosen_id in response_of:
                Turn.objects.filter(pk=turn_of[old_turn.pk].pk).update(
                    chosen_id=response_of[old_turn.chosen_id]
                )
    return copy


def _copy_response(
    r: Response, turn: Turn, pane: Pane, same_owner: bool, live: dict[int, response_log.Batch]
) -> Response:
    copy = Response(
        turn=turn,
        pane=pane,
        model_key=r.model_key,
        display_name=r.display_name,
        params=r.params,
        status=r.status,
        text=r.text,
        reasoning=r.reasoning,
        tool_calls=r.tool_calls,
        finish_reason=r.finish_reason,
        error=r.error,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        reasoning_tokens=r.reasoning_tokens,
        usage_estimated=r.usage_estimated,
        ttft_ms=r.ttft_ms,
        waited_ms=r.waited_ms,
        total_ms=r.total_ms,
        tokens_per_s=r.tokens_per_s,
        cost=r.cost,
        cost_currency=r.cost_currency,
        credential_id=r.credential_id if same_owner else None,
        key_scope=r.key_scope,
        key_label=r.key_label if same_owner else "",
        excluded=r.excluded,
        started_at=r.started_at,
        finished_at=r.finished_at,
    )
    if r.status in ACTIVE_STATUSES:
        batch = live.get(r.pk)
        copy.status = Status.INTERRUPTED
        copy.text = batch.text if batch else ""
        copy.reasoning = batch.reasoning if batch else ""
        copy.error = STILL_ANSWERING
    return copy


def _live_texts(pks: list[int]) -> dict[int, response_log.Batch]:
    if not pks:
        return {}
    with redis_client().pipeline(transaction=False) as pipe:
        for pk in pks:
            pipe.xrange(response_log.log_key(pk))
        results = pipe.execute()
    return {pk: response_log.merge(entries) for pk, entries in zip(pks, results, strict=True)}
