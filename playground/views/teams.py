"""Teams: the teams a person is in and a form to start one; a team's page with its members
and the endpoints shared with it, where owners and admins manage the members; leaving a
team; picking the team one works in. One template per page serves the whole page and, to
htmx, its main part only. The rules themselves live in ``playground.team_members``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from playground import team_members
from playground.access import (
    membership_for_user,
    shared_endpoint_for_unsharer,
    team_for_manager,
    user_id,
)
from playground.models import CustomEndpoint, Membership, Role
from playground.team_members import TeamRefused
from playground.teams import active_team, memberships, set_active_team

TEAMS = "playground/teams.html"
TEAM = "playground/team.html"
PICKER = "playground/_team_picker.html"

#: Owners first, then admins, then members.
ROLE_ORDER = {Role.OWNER: 0, Role.ADMIN: 1, Role.MEMBER: 2}


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware


def _teams_page(request: HtmxHttpRequest, name: str = "", problem: str = "") -> HttpResponse:
    rows = (
        Membership.objects.filter(user_id=user_id(request.user))
        .select_related("team")
        .annotate(members=Count("team__memberships"))
        .order_by("team__name")
    )
    template = f"{TEAMS}#main" if request.htmx else TEAMS
    return render(request, template, {"memberships": rows, "name": name, "problem": problem})


@login_required
@require_http_methods(["GET", "POST"])
def team_list(request: HtmxHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _teams_page(request)
    name = request.POST.get("name", "")
    try:
        team = team_members.create_team(request.user, name)
    except TeamRefused as refused:
        return _teams_page(request, name, str(refused))
    messages.success(request, f"Created {team.name}; you are its owner.")
    return _go(request, reverse("team", args=[team.pk]))


def _team_page(
    request: HtmxHttpRequest, membership: Membership, problem: str = "", who: str = ""
) -> HttpResponse:
    team = membership.team
    members = sorted(
        Membership.objects.filter(team_id=team.pk).select_related("user"),
        key=lambda m: (ROLE_ORDER[Role(m.role)], m.user.get_username().lower()),
    )
    endpoints = (
        CustomEndpoint.objects.filter(team_id=team.pk)
        .select_related("owner")
        .order_by("name", "pk")
    )
    context = {
        "team": team,
        "me": membership,
        "is_owner": membership.role == Role.OWNER,
        "members": members,
        "endpoints": endpoints,
        "roles": Role.choices,
        "problem": problem,
        "who": who,
    }
    return render(request, f"{TEAM}#main" if request.htmx else TEAM, context)


@login_required
@require_http_methods(["GET"])
def team_page(request: HtmxHttpRequest, team_id: int) -> HttpResponse:
    return _team_page(request, membership_for_user(request.user, team_id))


def _changed(request: HtmxHttpRequest, membership: Membership, sentence: str) -> HttpResponse:
    """After a change: the team's page as it is now (htmx), or a redirect to it."""
    messages.success(request, sentence)
    if request.htmx:
        return _team_page(request, membership_for_user(request.user, membership.team_id))
    return redirect("team", membership.team_id)


def _go(request: HtmxHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def team_add_member(request: HtmxHttpRequest, team_id: int) -> HttpResponse:
    manager = team_for_manager(request.user, team_id)
    who = request.POST.get("who", "")
    try:
        added = team_members.add_member(manager, who, request.POST.get("role", Role.MEMBER))
    except TeamRefused as refused:
        return _team_page(request, manager, str(refused), who)
    return _changed(
        request, manager, f"Added {added.user.get_username()} as {added.get_role_display()}."
    )


@login_required
@require_POST
def team_member_role(request: HtmxHttpRequest, team_id: int, member_id: int) -> HttpResponse:
    manager = team_for_manager(request.user, team_id)
    try:
        changed = team_members.change_role(manager, member_id, request.POST.get("role", ""))
    except TeamRefused as refused:
        return _team_page(request, manager, str(refused))
    if changed.user_id == manager.user_id and changed.role not in (Role.OWNER, Role.ADMIN):
        # They no longer manage the team: its page as a member sees it.
        messages.success(request, f"You are now a {changed.get_role_display().lower()}.")
        return _go(request, reverse("team", args=[team_id]))
    return _changed(
        request,
        manager,
        f"{changed.user.get_username()} is now {changed.get_role_display().lower()}.",
    )


@login_required
@require_POST
def team_member_remove(request: HtmxHttpRequest, team_id: int, member_id: int) -> HttpResponse:
    manager = team_for_manager(request.user, team_id)
    try:
        removed = team_members.remove_member(manager, member_id)
    except TeamRefused as refused:
        return _team_page(request, manager, str(refused))
    if removed.user_id == manager.user_id:
        messages.success(request, f"You left {manager.team.name}.")
        return _go(request, reverse("teams"))
    return _changed(
        request, manager, f"Removed {removed.user.get_username()} from {manager.team.name}."
    )


@login_required
@require_POST
def team_leave(request: HtmxHttpRequest, team_id: int) -> HttpResponse:
    membership = membership_for_user(request.user, team_id)
    try:
        team_members.leave(membership)
    except TeamRefused as refused:
        return _team_page(request, membership, str(refused))
    messages.success(request, f"You left {membership.team.name}.")
    return _go(request, reverse("teams"))


@login_required
@require_POST
def team_endpoint_unshare(request: HtmxHttpRequest, team_id: int, endpoint_id: int) -> HttpResponse:
    """Stops sharing an endpoint with the team (a manager's or the endpoint owner's call);
    the endpoint itself stays its owner's."""
    endpoint = shared_endpoint_for_unsharer(request.user, team_id, endpoint_id)
    CustomEndpoint.objects.filter(pk=endpoint.pk, team_id=team_id).update(team=None)
    membership = membership_for_user(request.user, team_id)
    return _changed(
        request, membership, f"{endpoint.name} is no longer shared with {membership.team.name}."
    )


def _safe_next(request: HttpRequest, url: str) -> str:
    allowed = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if url and allowed else reverse("home")


@login_required
@require_POST
def active_team_set(request: HtmxHttpRequest) -> HttpResponse:
    """Picks the team the person works in ("" for none): its keys come after their own, and
    its quota applies. Only a team they are in (any other is missing)."""
    wanted = request.POST.get("team", "")
    team = membership_for_user(request.user, wanted).team if wanted else None
    set_active_team(request.user, team)
    back = _safe_next(request, request.POST.get("next", ""))
    if not request.htmx:
        return redirect(back)
    context = {
        "memberships": memberships(request.user),
        "active": active_team(request.user),
        "next_url": back,
    }
    return render(request, PICKER, context)
