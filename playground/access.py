"""One access check per object type. Views and the websocket consumer both go through these;
an object the user may not see is reported as missing (404), never as forbidden, so its
existence does not leak."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from playground.models import (
    MANAGING_ROLES,
    Audience,
    ComparisonSet,
    Credential,
    CustomEndpoint,
    Membership,
    Pane,
    Response,
    Session,
    ShareLink,
    SitePolicy,
)
from playground.models.sharing import hash_token


def user_id(user: Any) -> int:
    """The signed-in user's id; anyone else is told the object is missing."""
    if user is None or not user.is_authenticated:
        raise Http404("Not found.")
    return int(user.pk)


def session_for_user(user: Any, session_id: int | str) -> Session:
    try:
        return Session.objects.get(
            pk=int(session_id), owner_id=user_id(user), deleted_at__isnull=True
        )
    except (Session.DoesNotExist, ValueError, TypeError):
        raise Http404("No such session.") from None


def deleted_session_for_user(user: Any, session_id: int | str) -> Session:
    """One of the person's sessions they deleted a moment ago (to undo it)."""
    try:
        return Session.objects.get(
            pk=int(session_id), owner_id=user_id(user), deleted_at__isnull=False
        )
    except (Session.DoesNotExist, ValueError, TypeError):
        raise Http404("No such session.") from None


def pane_for_user(user: Any, pane_id: int | str) -> Pane:
    try:
        return Pane.objects.select_related("session").get(
            pk=int(pane_id), session__owner_id=user_id(user), session__deleted_at__isnull=True
        )
    except (Pane.DoesNotExist, ValueError, TypeError):
        raise Http404("No such pane.") from None


def response_for_user(user: Any, response_id: int | str) -> Response:
    """An answer in one of the person's sessions, with its turn, pane and session."""
    try:
        return Response.objects.select_related("turn__session", "pane").get(
            pk=int(response_id),
            turn__session__owner_id=user_id(user),
            turn__session__deleted_at__isnull=True,
        )
    except (Response.DoesNotExist, ValueError, TypeError):
        raise Http404("No such answer.") from None


def endpoint_for_user(user: Any, endpoint_id: int | str) -> CustomEndpoint:
    try:
        return CustomEndpoint.objects.get(pk=int(endpoint_id), owner_id=user_id(user))
    except (CustomEndpoint.DoesNotExist, ValueError, TypeError):
        raise Http404("No such endpoint.") from None


def membership_for_user(user: Any, team_id: int | str) -> Membership:
    """The person's membership of a team they are in; anyone else is told it is missing."""
    try:
        return Membership.objects.select_related("team").get(
            team_id=int(team_id), user_id=user_id(user)
        )
    except (Membership.DoesNotExist, ValueError, TypeError):
        raise Http404("No such team.") from None


def team_for_manager(user: Any, team_id: int | str) -> Membership:
    """A team the person manages (owner or admin). A member who does not manage it is
    told it is missing too: from them the team is known, but its management is not theirs."""
    membership = membership_for_user(user, team_id)
    if membership.role not in MANAGING_ROLES:
        raise Http404("No such team.")
    return membership


def credential_for_manager(user: Any, credential_id: int | str) -> Credential:
    """A credential the person may replace, disable, delete and test: their own, or one of
    a team they manage. The organisation's are managed in Django admin only."""
    uid = user_id(user)
    try:
        return Credential.objects.get(
            Q(scope="user", user_id=uid)
            | Q(
                scope="team",
                team__memberships__user_id=uid,
                team__memberships__role__in=MANAGING_ROLES,
            ),
            pk=int(credential_id),
        )
    except (Credential.DoesNotExist, ValueError, TypeError):
        raise Http404("No such key.") from None


def shared_endpoint_for_unsharer(
    user: Any, team_id: int | str, endpoint_id: int | str
) -> CustomEndpoint:
    """An endpoint shared with a team, for someone who may stop sharing it there: the team's
    owners and admins, and the endpoint's owner. Other members see it on the team's page,
    but to them, as to outsiders, it is missing here."""
    membership = membership_for_user(user, team_id)
    try:
        endpoint = CustomEndpoint.objects.get(pk=int(endpoint_id), team_id=membership.team_id)
    except (CustomEndpoint.DoesNotExist, ValueError, TypeError):
        raise Http404("No such endpoint.") from None
    if not membership.manages and endpoint.owner_id != membership.user_id:
        raise Http404("No such endpoint.")
    return endpoint


def comparison_sets_for_user(user: Any) -> QuerySet[ComparisonSet]:
    """The comparison sets a person may see and start from: their own, and those shared
    with a team they are in (a team they left no longer counts)."""
    uid = user_id(user)
    teams = Membership.objects.filter(user_id=uid).values("team_id")
    return ComparisonSet.objects.filter(Q(owner_id=uid) | Q(team_id__in=teams))


def comparison_set_for_user(user: Any, set_id: int | str) -> ComparisonSet:
    """A comparison set the person may start from (:func:`comparison_sets_for_user`)."""
    try:
        return comparison_sets_for_user(user).select_related("team").get(pk=int(set_id))
    except (ComparisonSet.DoesNotExist, ValueError, TypeError):
        raise Http404("No such set.") from None


def comparison_set_for_manager(user: Any, set_id: int | str) -> ComparisonSet:
    """A comparison set the person may delete: their own, or one shared with a team they
    are an owner or admin of. Its other members see it, but to them it is missing here."""
    uid = user_id(user)
    managed = Membership.objects.filter(user_id=uid, role__in=MANAGING_ROLES).values("team_id")
    try:
        return ComparisonSet.objects.select_related("team").get(
            Q(owner_id=uid) | Q(team_id__in=managed), pk=int(set_id)
        )
    except (ComparisonSet.DoesNotExist, ValueError, TypeError):
        raise Http404("No such set.") from None


def comparison_set_for_owner(user: Any, set_id: int | str) -> ComparisonSet:
    """A comparison set the person may rename and share: their own only (a team's managers
    may delete one shared with their team, but not change it)."""
    try:
        return ComparisonSet.objects.select_related("team").get(
            pk=int(set_id), owner_id=user_id(user)
        )
    except (ComparisonSet.DoesNotExist, ValueError, TypeError):
        raise Http404("No such set.") from None


#: Whatever the reason a share token opens nothing, the viewer is told the same.
LINK_NOT_AVAILABLE = "This link is not available."


def share_link_for_viewer(user: Any, token: str) -> ShareLink:
    """The share link ``token`` opens for ``user`` (signed in or not), with its session and
    the session's owner: the one check of a share token, for its page, its websocket and
    its exports.

    It opens while it is not revoked, not expired, and its session not deleted, for:
    anyone, when it is a link for anyone and the site allows such links; otherwise the
    session's owner and whoever shares a team with the owner now (signed in). Any other
    token, for any reason, is the same Http404, so a viewer cannot tell a revoked link
    from one that never existed."""
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        raise Http404(LINK_NOT_AVAILABLE)
    try:
        link = ShareLink.objects.select_related("session__owner").get(
            token_hash=hash_token(token),
            revoked_at__isnull=True,
            session__deleted_at__isnull=True,
        )
    except ShareLink.DoesNotExist:
        raise Http404(LINK_NOT_AVAILABLE) from None
    if link.expires_at is not None and link.expires_at <= timezone.now():
        raise Http404(LINK_NOT_AVAILABLE)
    if link.audience == Audience.ANYONE and SitePolicy.current().allow_public_links:
        return link
    viewer = user.pk if user is not None and user.is_authenticated else None
    owner = link.session.owner_id
    if viewer is not None and (
        viewer == owner
        or Membership.objects.filter(user_id=viewer, team__memberships__user_id=owner).exists()
    ):
        return link
    raise Http404(LINK_NOT_AVAILABLE)


def share_link_for_owner(user: Any, link_id: int | str) -> ShareLink:
    """One of the links to a session of the person's own (to revoke it); their session's
    deletion hides its links here too."""
    try:
        return ShareLink.objects.select_related("session").get(
            pk=int(link_id), session__owner_id=user_id(user), session__deleted_at__isnull=True
        )
    except (ShareLink.DoesNotExist, ValueError, TypeError):
        raise Http404("No such link.") from None
