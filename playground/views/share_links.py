"""The owner's Share panel of a session: make a link (its URL shown once), list the
session's links, revoke one. One template serves the panel (htmx, on the session page) and
a page of its own (without JavaScript). The rules live in ``playground.share_links``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from playground import share_links
from playground.access import session_for_user, share_link_for_owner
from playground.models import Audience, Session, SitePolicy

PANEL = "playground/share.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware


def _panel(request: HtmxHttpRequest, session: Session, **extra: Any) -> HttpResponse:
    context = {
        "session": session,
        "rows": share_links.links_of(session),
        "public_allowed": SitePolicy.current().allow_public_links,
        "audiences": Audience,
        "expiries": share_links.EXPIRY_CHOICES,
        "audience": Audience.TEAMS,
        "expiry": "never",
        **extra,
    }
    response = render(request, f"{PANEL}#panel" if request.htmx else PANEL, context)
    response["Cache-Control"] = "no-store"  # it may hold a new link's URL
    return response


@login_required
@require_http_methods(["GET", "POST"])
def share_panel(request: HtmxHttpRequest, session_id: int) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    if request.method != "POST":
        return _panel(request, session)
    audience = request.POST.get("audience", "")
    expiry = request.POST.get("expiry", "")
    try:
        _link, token = share_links.create_link(session, request.user, audience, expiry)
    except share_links.ShareRefused as refused:
        return _panel(request, session, problem=str(refused), audience=audience, expiry=expiry)
    url = request.build_absolute_uri(reverse("shared", args=[token]))
    return _panel(request, session, new_url=url)


@login_required
@require_POST
def share_revoke(request: HtmxHttpRequest, link_id: int) -> HttpResponse:
    link = share_link_for_owner(request.user, link_id)
    share_links.revoke(link)
    if not request.htmx:
        return redirect("share", link.session_id)
    return _panel(request, link.session, revoked=link.pk)
