"""Which teams a person is in, and which one is active."""

from __future__ import annotations

from typing import Any

from playground.catalog import ShortCache
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
    if user is None or not user.is_authenticated or not _anyone_in_a_team.get():
        return None
    row = (
        ActiveTeam.objects.filter(user_id=user.pk, team__memberships__user_id=user.pk)
        .select_related("team")
        .first()
    )
    return row.team if row else None


def _load_anyone() -> bool:
    return ActiveTeam.objects.exists()


# Whether anyone works in a team at all: a site without teams reads no active team on a
# Send (a pick applies at once in the process that saved it, within
# catalog.CACHE_SECONDS in the others).
_anyone_in_a_team: ShortCache[bool] = ShortCache(_load_anyone)


def forget_active_teams(**_: Any) -> None:
    _anyone_in_a_team.forget()


def set_active_team(user: Any, team: Team | None) -> None:
    if team is None:
        ActiveTeam.objects.filter(user_id=user.pk).delete()
    else:
        ActiveTeam.objects.update_or_create(user_id=user.pk, defaults={"team": team})
