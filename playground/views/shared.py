"""A session seen through a share link (``/shared/<token>/``): read-only, live while it
answers, forkable by a signed-in viewer.

Every request by token goes through ``share_links.open_link`` (the one access check, with
its count of tries). A token that opens nothing, whatever the reason, gets the same page
with the same bytes and a 404; too many tries, a 429 with a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from playground import share_links
from playground.catalog import CatalogModel
from playground.export import export_response
from playground.forking import fork_session
from playground.models import ShareLink
from playground.own_models import models_for_user
from playground.pane_view import PaneView
from playground.views.pages import session_panes


@dataclass
class SharedPane:
    """A pane as the read-only page shows it: the pane and the parameters its owner set."""

    pane: PaneView
    params: list[tuple[str, str]]


def link_for_request(request: HttpRequest, token: str) -> ShareLink | HttpResponse:
    """The link ``token`` opens for this request, or the response that says it does not
    (the not-available page, or too many tries)."""
    try:
        return share_links.open_link(request.user, request.META.get("REMOTE_ADDR", ""), token)
    except share_links.TooManyTries as refused:
        response = HttpResponse(
            render_to_string("playground/shared_refused.html", {"sentence": str(refused)}),
            status=429,
        )
        response["Retry-After"] = "60"
        return _private(response)
    except Http404:
        return not_available(request)


def not_available(request: HttpRequest) -> HttpResponse:
    """The one answer to any token that opens nothing: rendered without the request, so
    that no token, reason or CSRF value makes two of them differ."""
    body = render_to_string(
        "playground/shared_unavailable.html", {"signed_in": request.user.is_authenticated}
    )
    return _private(HttpResponse(body, status=404))


def _private(response: HttpResponse) -> HttpResponse:
    # The URL is the capability: kept out of caches, and out of the Referer of a link in an
    # answer that the viewer follows to another site ("same-origin", not "no-referrer":
    # with that, the browser sends the Fork form with "Origin: null", which CSRF refuses).
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    link = link_for_request(request, token)
    if isinstance(link, HttpResponse):
        return link
    session, owner = link.session, link.session.owner
    share_links.record_opening(link, request.user)
    models = models_for_user(owner)  # to name the owner's models and their parameters
    panes, control_id, last_turn = session_panes(session, models, shared=True)
    params = dict(session.panes.filter(removed=False).values_list("pk", "params"))
    context = {
        "session": session,
        "token": token,
        "owner_name": owner.get_full_name() or owner.get_username(),
        "panes": [SharedPane(p, shown_params(p.model, params.get(p.pane_id or 0))) for p in panes],
        "control_id": control_id,
        "last_turn": last_turn,
        "last_response": max((r["id"] for p in panes for r in p.responses), default=0),
    }
    return _private(render(request, "playground/shared.html", context))


def shown_params(model: CatalogModel | None, values: Any) -> list[tuple[str, str]]:
    """The parameters the owner set for a pane, named as the pane's fields name them."""
    labels = {p.name: p.label for p in model.params} if model is not None else {}
    shown = []
    for name, value in (values or {}).items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        shown.append((labels.get(name, name), text))
    return shown


@require_POST
def shared_fork(request: HttpRequest, token: str) -> HttpResponse:
    """A copy of the shared session, the viewer's own from then on: what they send there
    is answered with their keys and counted on their quota."""
    link = link_for_request(request, token)
    if isinstance(link, HttpResponse):
        return link
    if not request.user.is_authenticated:
        next_url = reverse("shared", args=[token])
        return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")
    copy = fork_session(link.session, int(request.user.pk))
    return redirect("session", copy.pk)


@require_GET
def shared_export(request: HttpRequest, token: str, fmt: str) -> HttpResponse:
    """The shared session as Markdown or JSON, as a viewer sees it (no key names, nothing
    of the owner's but their display name: playground.export)."""
    link = link_for_request(request, token)
    if isinstance(link, HttpResponse):
        return link
    share_links.record_opening(link, request.user)
    return _private(export_response(link.session, fmt, for_viewer=True))
