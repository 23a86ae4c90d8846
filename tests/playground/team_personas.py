"""The team the teams tests share: Research, with an owner (alice), an admin (carol) and a
member (bob); mallory is in no team. Each persona has a browser of their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.test import Client

from playground.models import Membership, Role, Team

PASSWORD = "correct horse battery staple"


@dataclass
class Research:
    team: Team
    owner: Any
    admin: Any
    member: Any
    outsider: Any

    def membership(self, user: Any) -> Membership:
        return Membership.objects.get(team=self.team, user=user)


def research_team(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    admin = django_user_model.objects.create_user("carol", "carol@example.com", PASSWORD)
    member = django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)
    team = Team.objects.create(name="Research")
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    Membership.objects.create(team=team, user=member, role=Role.MEMBER)
    return Research(team, owner, admin, member, outsider)


def browser(user: Any | None) -> Client:
    """A browser of its own, signed in as ``user`` (anonymous for None)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def rows() -> list[tuple[int, int, str]]:
    """Every membership as the database holds it."""
    return list(Membership.objects.order_by("pk").values_list("team_id", "user_id", "role"))
