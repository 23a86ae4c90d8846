"""Which teams a person is in, and which one is active."""

from __future__ import annotations

from typing import Any

from playground.models import ActiveTeam, Membership, Team


def team_ids(user: Any) -> list[int]:
    if user is None or not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user_id=user.pk).values_list("team_id", flat=True))


def memberships(user: Any) -> list[Membership]:
    if user is None or not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user_id=user.pk).select_related("team"))


def active_team(user: Any) -> Team | None:
    """The team ``user`` picked, while they are still in it; else none (a person works on
    their own until they pick one)."""
    if user is None or not user.is_authenticated:
        return None
    row = (
        ActiveTeam.objects.filter(user_id=user.pk, team__memberships__user_id=user.pk)
        .select_related("team")
        .first()
    )
    return row.team if row else None


def set_active_team(user: Any, team: Team | None) -> None:
    if team is None:
        ActiveTeam.objects.filter(user_id=user.pk).delete()
    else:
        ActiveTeam.objects.update_or_create(user_id=user.pk, defaults={"team": team})
