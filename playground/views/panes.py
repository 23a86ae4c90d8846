"""Editing panes before Send: add a pane, switch a pane's model (its parameter fields)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from playground import steering
from playground.access import session_for_user
from playground.catalog import default_pane_models
from playground.compose import pane_positions, picked_models, read_pane
from playground.key_picker import PaneKeys, takes_key
from playground.own_models import models_for_user
from playground.pane_view import pane_view


@login_required
@require_GET
def pane_editor(request: HttpRequest) -> HttpResponse:
    """A new pane column, placed after the existing ones."""
    positions = pane_positions(request.GET)
    if len(positions) >= settings.PLAYGROUND_MAX_PANES:
        return HttpResponse(status=204)
    joins, taken = "", list(positions)
    if request.GET.get("session"):
        # A new pane never takes the place of one that answered in this session (one the
        # person removed, perhaps a moment ago and not yet sent): its answers stay its own.
        session = session_for_user(request.user, request.GET["session"])
        taken += list(session.panes.values_list("position", flat=True))
        joins = steering.joins_note(session.context_policy, session.turns.count())
    position = max(taken, default=-1) + 1
    if position >= 1000:
        return HttpResponse(status=204)
    models = models_for_user(request.user)
    model_key = request.GET.get("model", "")
    if model_key not in models:
        defaults = default_pane_models(models)
        if not defaults:
            return HttpResponse(status=204)  # nothing to pick: the page says so
        model_key = defaults[0]
    keys = PaneKeys.load(request.user)
    pane = pane_view(position, model_key, {}, models, keys=keys)
    pane.joins = joins
    context = {"pane": pane, "models": list(models.values()), "keyed": keys.keyed(models.values())}
    return render(request, "playground/_pane.html", context)


@login_required
@require_GET
def pane_params(request: HttpRequest, position: int) -> HttpResponse:
    """The parameter fields and the Key select for the model now picked in a pane; values
    that still apply are kept (a key picked for the previous model falls back to
    Automatic unless it fits this one too)."""
    models = models_for_user(request.user, picked=picked_models(request.GET, [position]))
    spec = read_pane(request.GET, position, models)
    keys = PaneKeys.load(request.user) if takes_key(spec.model) else None
    pane = pane_view(
        position,
        spec.model_key,
        dict(spec.raw_params),
        models,
        keys=keys,
        picked_key=spec.picked_key,
        keep_lost_key=False,
    )
    return render(request, "playground/_pane.html#params", {"pane": pane})
