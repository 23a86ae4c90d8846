"""Comparison sets: "Save as set" on the composer, and the Sets page (/sets/) listing one's
own sets and those shared with one's teams, each to start, copy a link to, rename, share or
delete. One template serves the whole page and, to htmx, its main part only; the rules live
in ``playground.comparison_sets``, who may reach a set in ``playground.access``."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from playground.access import (
    comparison_set_for_manager,
    comparison_set_for_owner,
    comparison_sets_for_user,
    user_id,
)
from playground.comparison_sets import SetRefused, describe_pane, rename_set, save_set, share_set
from playground.models import ComparisonSet, Membership
from playground.own_models import models_for_user
from playground.teams import memberships

SETS = "playground/sets.html"
SAVED = "playground/_set_saved.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware


def start_url(set_id: int) -> str:
    """Where a set starts a new comparison: the playground's page filled from the set."""
    return f"{reverse('home')}?set={set_id}"


@dataclass
class SetRow:
    comparison_set: ComparisonSet
    panes: list[str]  # each pane's model and parameters, in a few words
    mine: bool
    can_delete: bool
    start: str
    link: str  # the start address in full, to copy


def _rows(request: HttpRequest, teams: list[Membership]) -> list[SetRow]:
    uid = user_id(request.user)
    managed = {m.team_id for m in teams if m.manages}
    models = models_for_user(request.user)
    rows = []
    for chosen in (
        comparison_sets_for_user(request.user)
        .select_related("team", "owner")
        .order_by("name", "pk")
    ):
        mine = chosen.owner_id == uid
        start = start_url(chosen.pk)
        rows.append(
            SetRow(
                chosen,
                [describe_pane(pane, models) for pane in chosen.panes],
                mine,
                mine or chosen.team_id in managed,
                start,
                request.build_absolute_uri(start),
            )
        )
    return rows


def _sets_page(
    request: HtmxHttpRequest, problem: str = "", problem_set: int | None = None, typed: str = ""
) -> HttpResponse:
    teams = memberships(request.user)
    rows = _rows(request, teams)
    context = {
        "own": [r for r in rows if r.mine],
        "shared": [r for r in rows if not r.mine],
        "teams": [m.team for m in teams],
        "problem": problem,
        "problem_set": problem_set,
        "typed": typed,
    }
    return render(request, f"{SETS}#main" if request.htmx else SETS, context)


def _changed(request: HtmxHttpRequest, sentence: str) -> HttpResponse:
    """After a change: the Sets page as it is now (htmx), or a redirect to it."""
    messages.success(request, sentence)
    if request.htmx:
        return _sets_page(request)
    return redirect("sets")


@login_required
@require_GET
def set_list(request: HtmxHttpRequest) -> HttpResponse:
    return _sets_page(request)


@login_required
@require_POST
def set_save(request: HtmxHttpRequest) -> HttpResponse:
    """The composer's panes and system prompt saved as a new set (its "Save as set" box):
    the sentence saying it was saved, or the problems, and nothing saved."""
    try:
        saved = save_set(request.user, request.POST)
    except SetRefused as refused:
        response = render(request, "playground/_errors.html", {"errors": refused.problems})
        return reswap(retarget(response, "#save-set-result"), "innerHTML")
    return render(request, SAVED, {"saved": saved, "start": start_url(saved.pk)})


@login_required
@require_POST
def set_rename(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    chosen = comparison_set_for_owner(request.user, set_id)
    old, typed = chosen.name, request.POST.get("name", "")
    try:
        rename_set(chosen, typed)
    except SetRefused as refused:
        return _sets_page(request, str(refused), chosen.pk, typed)
    return _changed(request, f"Renamed “{old}” to “{chosen.name}”.")


@login_required
@require_POST
def set_sharing(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    chosen = comparison_set_for_owner(request.user, set_id)
    try:
        share_set(chosen, request.POST.get("team", ""))
    except SetRefused as refused:
        return _sets_page(request, str(refused), chosen.pk)
    if chosen.team is None:
        return _changed(request, f"“{chosen.name}” is yours only now.")
    return _changed(request, f"“{chosen.name}” is shared with {chosen.team.name}.")


@login_required
@require_POST
def set_delete(request: HtmxHttpRequest, set_id: int) -> HttpResponse:
    chosen = comparison_set_for_manager(request.user, set_id)
    ComparisonSet.objects.filter(pk=chosen.pk).delete()
    return _changed(request, f"Deleted “{chosen.name}”.")
