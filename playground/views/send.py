"""Send: validate every pane, save the turn with one pending response per pane, enqueue."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event
from redis.typing import EncodableT, FieldT

from playground import answers, quotas
from playground.access import session_for_user, user_id
from playground.compose import Compose, read_compose
from playground.live import fragments, response_log
from playground.media import keep as keep_media
from playground.models import ContextPolicy, Pane, Response, Session, Turn
from playground.redis_sync import redis_client
from playground.tasks import hand_to_worker, run_turn


@login_required
@require_POST
def send(request: HttpRequest, session_id: int | None = None) -> HttpResponse:
    session = session_for_user(request.user, session_id) if session_id is not None else None
    # Counted first: the same round trip tells whether another process changed a key or a
    # team since (the form's reading below uses both).
    client, person = redis_client(), user_id(request.user)
    too_many = quotas.count_send(client, person)
    try:
        compose = read_compose(request.POST, request.FILES, request.user)
        if too_many:
            compose.errors.append(too_many)
        elif not compose.errors:
            try:
                turn, responses = _save_turn(request, session, compose)
            except quotas.QuotaRefused as refused:
                compose.errors.append(str(refused))
    except (OperationalError, InterfaceError):
        # The database went away meanwhile (503 and a sentence: playground/database_away.py):
        # nothing was sent, so nothing counts.
        if not too_many:
            quotas.uncount_send(client, person)
        raise
    if compose.errors:
        if not too_many:
            quotas.uncount_send(client, person)
        # Nothing is saved and the form stays as the person left it; only the errors show.
        response = render(request, "playground/_errors.html", {"errors": compose.errors})
        return reswap(retarget(response, "#compose-errors"), "innerHTML")
    created = session is None
    response_ids = [r.pk for r in responses]
    # Hand the turn to a worker, then announce it to every page following the session (a
    # page that learns of it late replays its panes from the start). The task carries the
    # turn's and its responses' ids only: no prompt, no key. The announcement carries the
    # turn's articles, rendered here from the rows just saved: the followers send them on
    # without a query or a render of their own, while the first tokens are on their way.
    # (A new comparison's page is loaded after this, with the turn in it: no articles.)
    hand_to_worker(response_ids, run_turn, turn.pk, response_ids)
    announcement: dict[FieldT, EncodableT] = {
        "turn": turn.pk,
        "ids": ",".join(map(str, response_ids)),
    }
    if not created:
        announcement["html"] = fragments.turn_articles(responses)
    # The articles hold the prompt: the announcement goes when the response logs go (the
    # session's next Send sets the time again).
    control = response_log.control_key(turn.session_id)
    with redis_client().pipeline(transaction=False) as pipe:
        pipe.xadd(control, announcement, maxlen=1000, approximate=True)
        pipe.expire(control, settings.PLAYGROUND_LOG_TTL)
        pipe.execute()
    if created:
        return HttpResponseClientRedirect(reverse("session", args=[turn.session_id]))
    # Nothing to show: the errors box is emptied (no template to render on the way).
    response = HttpResponse("")
    response["X-Turn-Id"] = str(turn.pk)
    return trigger_client_event(
        reswap(retarget(response, "#compose-errors"), "innerHTML"), "turn-sent"
    )


def _save_turn(
    request: HttpRequest, session: Session | None, compose: Compose
) -> tuple[Turn, list[Response]]:
    with transaction.atomic():
        existing: dict[int, Pane] = {}
        last = None
        if session is None:
            # A new comparison: nothing to compare against, so no reads, one insert each.
            session = Session.objects.create(
                owner_id=user_id(request.user),
                title=" ".join(compose.prompt.split())[:80],
                system_prompt=compose.system_prompt,
                context_policy=compose.context_policy or ContextPolicy.OWN,
            )
        else:
            if connection.features.has_select_for_update:
                # PostgreSQL: the row lock orders two Sends to one session (turn index).
                # SQLite has none to take: its write transaction (IMMEDIATE) holds the
                # whole database, and the session was read a moment ago.
                session = Session.objects.select_for_update().get(pk=session.pk)
            session.system_prompt = compose.system_prompt
            session.context_policy = compose.context_policy or session.context_policy
            session.save(update_fields=["system_prompt", "context_policy", "updated_at"])
            # Only the panes showing now: a model added where one was removed gets a row of
            # its own, so the removed pane's answers never become its history.
            existing = {
                p.position: p
                for p in session.panes.filter(removed=False).annotate(**quotas.HISTORY)
            }
            last = session.turns.aggregate(last=Max("index"))["last"]
        # The quotas: every asked pane's worst case reserved at once, or a refusal that rolls
        # all of this back (a new session included).
        history = quotas.pane_histories(
            existing, session.context_policy, [p.position for p in compose.panes]
        )
        plan = quotas.plan_turn(user_id(request.user), compose, history)
        reserved = quotas.reserve(plan)
        # Panes are kept by position; only the ones that changed are written.
        panes: list[Pane] = []
        new: list[Pane] = []
        for spec in compose.panes:
            pane = existing.pop(spec.position, None)
            wanted = (spec.model_key, spec.params, spec.picked_key)
            if pane is None:
                pane = Pane(
                    session=session,
                    position=spec.position,
                    model_key=spec.model_key,
                    params=spec.params,
                    credential_id=spec.picked_key,
                )
                new.append(pane)
            elif (pane.model_key, pane.params, pane.credential_id) != wanted:
                pane.model_key, pane.params, pane.credential_id = wanted
                pane.save(update_fields=["model_key", "params", "credential"])
            panes.append(pane)
        if new:
            Pane.objects.bulk_create(new)  # sets their ids (RETURNING on SQLite and PostgreSQL)
        if existing:  # removed from the page since the last Send
            Pane.objects.filter(pk__in=[p.pk for p in existing.values()]).update(removed=True)
        turn = Turn.objects.create(
            session=session,
            index=0 if last is None else last + 1,
            prompt=compose.prompt,
            system_prompt=compose.system_prompt,
            tools=compose.tools,
            images=compose.images,
            media=compose.media.entries,
            team=compose.team,
        )
        keep_media(compose.media.uploads, turn)
        asked = [(p, spec) for p, spec in zip(panes, compose.panes, strict=True)]
        if compose.asked is not None:
            asked = [(p, spec) for p, spec in asked if spec.position in compose.asked]
        responses = Response.objects.bulk_create(
            answers.pending_answer(turn, pane, spec, worst, held)
            for (pane, spec), worst, held in zip(asked, plan.panes, reserved, strict=True)
        )
    return turn, responses
