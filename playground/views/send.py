"""Send: validate every pane, save the turn with one pending response per pane, enqueue."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from playground import panelog
from playground.access import session_for_user, user_id
from playground.compose import Compose, read_compose
from playground.models import Pane, Response, Session, Turn
from playground.redis_sync import redis_client
from playground.tasks import run_turn


@login_required
@require_POST
def send(request: HttpRequest, session_id: int | None = None) -> HttpResponse:
    session = session_for_user(request.user, session_id) if session_id is not None else None
    compose = read_compose(request.POST, request.FILES)
    if compose.errors:
        # Nothing is saved and the form stays as the person left it; only the errors show.
        response = render(request, "playground/_errors.html", {"errors": compose.errors})
        return reswap(retarget(response, "#compose-errors"), "innerHTML")
    created = session is None
    turn = _save_turn(request, session, compose)
    # Announce the turn to every page following the session, then hand it to a worker.
    # The task carries the turn's id only: no prompt, no key.
    redis_client().xadd(
        panelog.control_key(turn.session_id), {"turn": turn.pk}, maxlen=1000, approximate=True
    )
    run_turn.delay(turn.pk)
    if created:
        return HttpResponseClientRedirect(reverse("session", args=[turn.session_id]))
    response = render(request, "playground/_errors.html", {"errors": []})
    response["X-Turn-Id"] = str(turn.pk)
    return trigger_client_event(
        reswap(retarget(response, "#compose-errors"), "innerHTML"), "turn-sent"
    )


def _save_turn(request: HttpRequest, session: Session | None, compose: Compose) -> Turn:
    with transaction.atomic():
        if session is None:
            title = " ".join(compose.prompt.split())[:80]
            session = Session.objects.create(owner_id=user_id(request.user), title=title)
        else:
            session = Session.objects.select_for_update().get(pk=session.pk)
        session.system_prompt = compose.system_prompt
        session.save(update_fields=["system_prompt", "updated_at"])
        # Panes are kept by position; only the ones that changed are written.
        existing = {p.position: p for p in session.panes.all()}
        panes: list[Pane] = []
        for spec in compose.panes:
            pane = existing.pop(spec.position, None)
            wanted = (spec.model_key, spec.params, False)
            if pane is None:
                pane = Pane.objects.create(
                    session=session,
                    position=spec.position,
                    model_key=spec.model_key,
                    params=spec.params,
                )
            elif (pane.model_key, pane.params, pane.removed) != wanted:
                pane.model_key, pane.params, pane.removed = wanted
                pane.save(update_fields=["model_key", "params", "removed"])
            panes.append(pane)
        gone = [p.pk for p in existing.values() if not p.removed]
        if gone:
            Pane.objects.filter(pk__in=gone).update(removed=True)
        last = session.turns.aggregate(last=Max("index"))["last"]
        turn = Turn.objects.create(
            session=session,
            index=0 if last is None else last + 1,
            prompt=compose.prompt,
            system_prompt=compose.system_prompt,
            tools=compose.tools,
            images=compose.images,
        )
        Response.objects.bulk_create(
            Response(
                turn=turn,
                pane=pane,
                model_key=spec.model_key,
                display_name=spec.model.display_name if spec.model else spec.model_key,
                params=spec.params,
            )
            for pane, spec in zip(panes, compose.panes, strict=True)
        )
    return turn
