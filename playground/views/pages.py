"""The playground page: a new comparison, or a saved session with its panes and history."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from playground import comparison_sets, session_list, steering
from playground.access import deleted_session_for_user, session_for_user
from playground.catalog import CatalogModel
from playground.key_picker import PaneKeys
from playground.live import response_log
from playground.live.watchdog import reap_dead_sync
from playground.models import ContextPolicy, Response, Session, Status
from playground.own_models import models_for_user
from playground.pane_view import PaneView, pane_view, response_context
from playground.redis_sync import redis_client
from playground.rendering import answers_html
from playground.views.sessions import sidebar_context, undo_context


def _sidebar(
    request: HttpRequest, models: dict[str, CatalogModel], current: int | None = None
) -> dict[str, Any]:
    """The sidebar's list, and on a new comparison the undo notice of a session deleted a
    moment ago (``?deleted=<id>``: the page it was deleted from came here)."""
    context = sidebar_context(request, models=models)
    context["current"] = current
    deleted = request.GET.get("deleted")
    if current is None and deleted:
        try:
            session = deleted_session_for_user(request.user, deleted)
        except Http404:
            return context
        if session_list.seconds_left(session):
            context.update(undo_context(session, reopen=True))
    return context


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """A new comparison: the default panes, or a set's (``?set=<id>``), or the models
    listed (``?models=a,b``); nothing is sent until the person presses Send."""
    models = models_for_user(request.user)
    keys = PaneKeys.load(request.user)
    start = comparison_sets.start(request.user, request.GET, models)
    panes = [
        pane_view(position, key, params, models, keys=keys)
        for position, (key, params) in enumerate(start.panes)
    ]
    return render(
        request,
        "playground/page.html",
        {
            "panes": panes,
            "session": None,
            **_sidebar(request, models),
            "models": list(models.values()),
            "keyed": keys.keyed(models.values()),
            "control_id": "0-0",
            "system_prompt": start.system_prompt,
            "same_params": start.same_params,
            "start_notes": start.notes,
        },
    )


def session_panes(
    session: Session,
    models: dict[str, CatalogModel],
    keys: PaneKeys | None = None,
    shared: bool = False,
) -> tuple[list[PaneView], str, int]:
    """The session's panes with their responses; streaming ones with what their log holds
    (``shared``: for a share link's viewer, ``pane_view.response_context``).

    Also where the page's follower starts: the control stream's last id and the last turn
    shown. The control id is read before the rows, so a turn sent meanwhile is either shown
    or announced later, never lost; if it is both, the follower skips it (turn ids grow).
    """
    redis = redis_client()
    control = redis.xrevrange(response_log.control_key(session.pk), count=1)
    control_id = response_log.text(control[0][0]) if control else "0-0"
    pane_rows = {p.pk: p for p in session.panes.filter(removed=False)}
    panes = {
        p.pk: pane_view(
            p.position, p.model_key, p.params, models, p.pk, keys, picked_key=p.credential_id
        )
        for p in pane_rows.values()
    }
    # Each turn read once, rather than once per pane through a join: its images, as
    # base64 in JSON, may be megabytes. The answers without what only quotas read.
    turns = {t.pk: t for t in session.turns.all()}
    responses = list(
        Response.objects.filter(turn__session=session, pane_id__in=list(panes))
        .defer("quota_counters", "reserved_tokens", "reserved_cost")
        .order_by("turn__index", "pane__position", "pk")
    )
    active = [r.pk for r in responses if r.status == Status.STREAMING]
    reaped = set(reap_dead_sync(active)) if active else set()
    for r in responses:
        if r.pk in reaped:
            r.refresh_from_db()
    live_ids = [r.pk for r in responses if r.is_active]
    with redis.pipeline(transaction=False) as pipe:
        for pk in live_ids:
            pipe.xrange(response_log.log_key(pk))
        results = pipe.execute()
    live = {pk: response_log.merge(entries) for pk, entries in zip(live_ids, results, strict=True)}
    for r in responses:
        batch = live.get(r.pk)
        if batch is not None and batch.ended:
            # It ended between the read of its row and the read of its log. Whoever ends
            # a pane saves the row before writing the end entry, so the row is final now
            # (were it not, the page's follower would replay the log from its start).
            r.refresh_from_db()
            del live[r.pk]
    # Every finished answer's HTML at once, from the shared cache (playground.rendering).
    ended = [r for r in responses if not r.is_active]
    html = dict(zip([r.pk for r in ended], answers_html([r.text for r in ended]), strict=True))
    for r in responses:
        r.turn, r.pane = turns[r.turn_id], pane_rows[r.pane_id]  # (a refresh forgets them)
        context = response_context(r, live=live.get(r.pk), shared=shared, html=html.get(r.pk))
        panes[r.pane_id].responses.append(context)
    last_turn = max((r.turn_id for r in responses), default=0)
    for pane in panes.values():
        if not pane.responses:
            pane.joins = steering.joins_note(session.context_policy, len(turns))
    return list(panes.values()), control_id, last_turn


@login_required
@require_GET
def session_page(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    models = models_for_user(request.user)
    keys = PaneKeys.load(request.user)
    panes, control_id, last_turn = session_panes(session, models, keys)
    return render(
        request,
        "playground/page.html",
        {
            "panes": panes,
            "session": session,
            **_sidebar(request, models, session.pk),
            "models": list(models.values()),
            "keyed": keys.keyed(models.values()),
            "control_id": control_id,
            "last_turn": last_turn,
            "last_response": max((r["id"] for p in panes for r in p.responses), default=0),
            "policies": ContextPolicy.choices,
            "rematch_slots": range(max(0, settings.PLAYGROUND_MAX_PANES - len(panes))),
            "system_prompt": session.system_prompt,
        },
    )
