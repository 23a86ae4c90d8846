"""One access check per object type. Views and the websocket consumer both go through these;
an object the user may not see is reported as missing (404), never as forbidden, so its
existence does not leak."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from playground.models import CustomEndpoint, Pane, Session


def user_id(user: Any) -> int:
    """The signed-in user's id; anyone else is told the object is missing."""
    if user is None or not user.is_authenticated:
        raise Http404("Not found.")
    return int(user.pk)


def session_for_user(user: Any, session_id: int | str) -> Session:
    try:
        return Session.objects.get(pk=int(session_id), owner_id=user_id(user))
    except (Session.DoesNotExist, ValueError, TypeError):
        raise Http404("No such session.") from None


def pane_for_user(user: Any, pane_id: int | str) -> Pane:
    try:
        return Pane.objects.select_related("session").get(
            pk=int(pane_id), session__owner_id=user_id(user)
        )
    except (Pane.DoesNotExist, ValueError, TypeError):
        raise Http404("No such pane.") from None


def endpoint_for_user(user: Any, endpoint_id: int | str) -> CustomEndpoint:
    try:
        return CustomEndpoint.objects.get(pk=int(endpoint_id), owner_id=user_id(user))
    except (CustomEndpoint.DoesNotExist, ValueError, TypeError):
        raise Http404("No such endpoint.") from None
