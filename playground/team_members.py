"""Who is in a team, with which role: creating a team, adding a member, changing a role,
removing a member, leaving. Each refusal is a :class:`TeamRefused` that carries the sentence
the page shows; a refused change changes nothing.

The rules: owners and admins manage the members; only an owner makes or removes owners and
admins; a team always keeps an owner (its last owner can be neither demoted nor removed,
and cannot leave); anyone else may leave. Every change locks the team's row first, so two
owners who demote each other at once cannot leave the team without one.

Whoever leaves a team (or is removed) stops sharing their endpoints and comparison sets
with it, and stops working in it; being out of the team, they no longer see its endpoints
or sets either (``own_models.visible_to`` and ``access.comparison_sets_for_user`` read the
memberships on every request).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from playground.models import (
    MANAGING_ROLES,
    ActiveTeam,
    ComparisonSet,
    CustomEndpoint,
    Membership,
    Role,
    Team,
)

MAX_NAME = 80

ONLY_OWNERS_MAKE = "Only an owner can make someone an owner or an admin."
ONLY_OWNERS_CHANGE = "Only an owner can change the role of an owner or an admin."
ONLY_OWNERS_REMOVE = "Only an owner can remove an owner or an admin."
LAST_OWNER_LEAVES = "You are this team's last owner: make someone else an owner first, then leave."
NOT_A_MANAGER = "Only the team's owners and admins manage its members."


class TeamRefused(Exception):
    """A change to a team that its rules refuse; ``str()`` is the sentence to show."""


def _printable(text: str) -> bool:
    return all(c.isprintable() for c in text)


def duplicate_name(name: str) -> str:
    return f"A team named “{name}” already exists; pick another name."


def create_team(user: Any, name: str) -> Team:
    """A new team named ``name`` with ``user`` as its owner."""
    name = " ".join(name.split())
    if not name:
        raise TeamRefused("Give the team a name.")
    if len(name) > MAX_NAME:
        raise TeamRefused(f"The name can be at most {MAX_NAME} characters long.")
    if not _printable(name):
        raise TeamRefused("The name cannot contain control characters.")
    if Team.objects.filter(name__iexact=name).exists():
        raise TeamRefused(duplicate_name(name))
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name)
            Membership.objects.create(team=team, user_id=user.pk, role=Role.OWNER)
    except IntegrityError:  # created meanwhile under the same name
        raise TeamRefused(duplicate_name(name)) from None
    return team


def role_of(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise TeamRefused("Pick a role: owner, admin or member.") from None


def _locked(team_id: int, user_id: int) -> Membership:
    """The acting person's membership, read again once the team's row is locked (their
    role may have changed since the page was shown). Call inside a transaction."""
    Team.objects.select_for_update().filter(pk=team_id).first()
    actor = Membership.objects.select_related("team", "user").filter(
        team_id=team_id, user_id=user_id
    )
    found = actor.first()
    if found is None or found.role not in MANAGING_ROLES:
        raise TeamRefused(NOT_A_MANAGER)
    return found


def _owners(team_id: int) -> int:
    return Membership.objects.filter(team_id=team_id, role=Role.OWNER).count()


def find_person(who: str) -> Any:
    """The one person whose username is ``who``, else whose email it is (any case)."""
    who = who.strip()
    if not who:
        raise TeamRefused("Give the username or email of the person to add.")
    people = get_user_model().objects.filter(is_active=True)
    person = people.filter(username=who).first()
    if person is not None:
        return person
    found = list(people.filter(email__iexact=who)[:2]) if "@" in who else []
    if len(found) > 1:
        raise TeamRefused(f"Several people use the email “{who}”; give a username instead.")
    if not found:
        raise TeamRefused(f"Nobody here has the username or email “{who}”.")
    return found[0]


def add_member(manager: Membership, who: str, role: str = Role.MEMBER) -> Membership:
    """Adds the person named by username or email ``who`` to ``manager``'s team."""
    wanted = role_of(role)
    person = find_person(who)
    with transaction.atomic():
        actor = _locked(manager.team_id, manager.user_id)
        if wanted in MANAGING_ROLES and actor.role != Role.OWNER:
            raise TeamRefused(ONLY_OWNERS_MAKE)
        if Membership.objects.filter(team_id=actor.team_id, user_id=person.pk).exists():
            raise TeamRefused(f"{person.get_username()} is already in this team.")
        return Membership.objects.create(team_id=actor.team_id, user=person, role=wanted)


def change_role(manager: Membership, member_id: int, role: str) -> Membership:
    """Gives membership ``member_id`` of ``manager``'s team the role ``role``."""
    wanted = role_of(role)
    with transaction.atomic():
        actor = _locked(manager.team_id, manager.user_id)
        target = _member(actor.team_id, member_id)
        if actor.role != Role.OWNER:
            if target.role in MANAGING_ROLES:
                raise TeamRefused(ONLY_OWNERS_CHANGE)
            if wanted in MANAGING_ROLES:
                raise TeamRefused(ONLY_OWNERS_MAKE)
        if target.role == Role.OWNER and wanted != Role.OWNER and _owners(actor.team_id) == 1:
            raise TeamRefused(
                f"{target.user.get_username()} is this team's last owner: make someone "
                "else an owner first."
            )
        Membership.objects.filter(pk=target.pk).update(role=wanted)
        target.role = wanted
        return target


def remove_member(manager: Membership, member_id: int) -> Membership:
    """Removes membership ``member_id`` from ``manager``'s team (oneself: as leaving)."""
    with transaction.atomic():
        actor = _locked(manager.team_id, manager.user_id)
        target = _member(actor.team_id, member_id)
        if target.pk == actor.pk:
            return _leave(actor)
        if target.role in MANAGING_ROLES and actor.role != Role.OWNER:
            raise TeamRefused(ONLY_OWNERS_REMOVE)
        # The actor is an owner who stays: the team keeps one.
        return _drop(target)


def leave(membership: Membership) -> Membership:
    """``membership``'s person leaves its team, unless they are its last owner."""
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=membership.team_id).first()
        current = Membership.objects.select_related("team", "user").filter(pk=membership.pk)
        found = current.first()
        if found is None:  # left meanwhile
            return membership
        return _leave(found)


def _leave(membership: Membership) -> Membership:
    if membership.role == Role.OWNER and _owners(membership.team_id) == 1:
        raise TeamRefused(LAST_OWNER_LEAVES)
    return _drop(membership)


def _drop(membership: Membership) -> Membership:
    CustomEndpoint.objects.filter(owner_id=membership.user_id, team_id=membership.team_id).update(
        team=None
    )
    # Their comparison sets too: a set is shared by a member, into a team they are in.
    ComparisonSet.objects.filter(owner_id=membership.user_id, team_id=membership.team_id).update(
        team=None
    )
    ActiveTeam.objects.filter(user_id=membership.user_id, team_id=membership.team_id).delete()
    membership.delete()
    return membership


def _member(team_id: int, member_id: int) -> Membership:
    """A membership of the team; any other id is a sentence (the member left meanwhile)."""
    found = Membership.objects.select_related("user").filter(pk=member_id, team_id=team_id).first()
    if found is None:
        raise TeamRefused("That person is no longer in this team.")
    return found
