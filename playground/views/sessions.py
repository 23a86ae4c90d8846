"""The sidebar's sessions: the list a page at a time, search, rename, pin, delete with undo,
and duplicate. Every id that comes in goes through access.session_for_user (or
deleted_session_for_user, to undo); anyone else's session is missing (404)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from kombu.exceptions import OperationalError

from playground import session_list, session_search
from playground.access import deleted_session_for_user, session_for_user, user_id
from playground.catalog import CatalogModel
from playground.forking import fork_session
from playground.models import ACTIVE_STATUSES, Response, Session
from playground.own_models import models_for_user
from playground.tasks import purge_deleted_session
from playground.views.stop import request_stop

log = logging.getLogger(__name__)
TEMPLATE = "playground/_sessions.html"
PLACES = ("item", "title")


def current_session(request: HttpRequest) -> int | None:
    """The session the page that asked is showing, if any (htmx names the page's URL)."""
    path = request.htmx.current_url_abs_path if request.htmx else None  # type: ignore[attr-defined]
    if not path:
        return None
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    return int(match.kwargs["session_id"]) if match.url_name == "session" else None


def sidebar_context(
    request: HttpRequest, after: str | None = None, models: dict[str, CatalogModel] | None = None
) -> dict[str, Any]:
    """What the sidebar's partials need: a page of the person's sessions."""
    models = models_for_user(request.user) if models is None else models
    page = session_list.page(user_id(request.user), models, after)
    return {"sessions": page, "more_page": bool(after)}


@login_required
@require_GET
def session_list_page(request: HttpRequest) -> HttpResponse:
    """A page of the sidebar's list (Show more), or its first (when a search is cleared)."""
    after = request.GET.get("after") or None
    try:
        context = sidebar_context(request, after)
    except session_list.BadCursor as bad:
        return render(request, f"{TEMPLATE}#results", {"error": str(bad)})
    context["current"] = current_session(request)
    return render(request, f"{TEMPLATE}#items", context)


@login_required
@require_GET
def session_search_results(request: HttpRequest) -> HttpResponse:
    """The person's sessions that match what the search box holds, in place of the list;
    the list itself when it is empty."""
    text = request.GET.get("q", "").strip()
    if not text:
        return session_list_page(request)
    context: dict[str, Any] = {"q": text, "current": current_session(request)}
    query = session_search.parse(text)
    if len(text) > 200:
        context["error"] = session_search.TOO_LONG
    elif not query.alternatives:
        context["error"] = session_search.NOTHING_TO_SEARCH
    else:
        try:
            context["results"] = session_search.search(user_id(request.user), query)
        except session_search.TooSlow as slow:
            context["error"] = str(slow)
    return render(request, f"{TEMPLATE}#results", context)


@login_required
@require_http_methods(["GET", "POST"])
def session_rename(request: HttpRequest, session_id: int) -> HttpResponse:
    """GET: the title as a field, in the sidebar or the page's heading. POST: save it."""
    session = session_for_user(request.user, session_id)
    source = request.POST if request.method == "POST" else request.GET
    place = _place(source.get("place", ""))
    context: dict[str, Any] = {"session": session, "place": place, "title": session.title}
    if request.method == "GET":
        return render(request, f"{TEMPLATE}#rename", context)
    title, error = session_list.clean_title(source.get("title", ""))
    if error:
        context.update(error=error, title=source.get("title", ""))
        return render(request, f"{TEMPLATE}#rename", context)
    session_list.rename(session, title)
    return _shown(request, session, place)


@login_required
@require_GET
def session_item(request: HttpRequest, session_id: int) -> HttpResponse:
    """The title as it is shown (a rename given up)."""
    session = session_for_user(request.user, session_id)
    place = _place(request.GET.get("place", ""))
    return _shown(request, session, place)


def _place(asked: str) -> str:
    """Where a title is being renamed: the sidebar's item, or the page's heading."""
    return asked if asked in PLACES else "item"


def _shown(request: HttpRequest, session: Session, place: str) -> HttpResponse:
    """The session's sidebar item or page heading, and the other one too when the page
    shows it (out of band)."""
    current = current_session(request)
    context = {
        "session": session,
        "item": session_list.item(session, models_for_user(request.user)),
        "place": place,
        "current": current,
        "in_sidebar": True,
    }
    return render(request, f"{TEMPLATE}#renamed", context)


@login_required
@require_POST
def session_pin(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    session_list.set_pinned(session, request.POST.get("pinned") == "1")
    context = sidebar_context(request)
    context["current"] = current_session(request)
    return render(request, f"{TEMPLATE}#items", context)


@login_required
@require_POST
def session_delete(request: HttpRequest, session_id: int) -> HttpResponse:
    """Hide the session, saying "Deleted '…'. Undo" for the undo window; answers still
    coming are stopped first, so nothing keeps spending. The page that showed it goes to a
    new comparison."""
    session = session_for_user(request.user, session_id)
    active = Response.objects.filter(turn__session=session, status__in=ACTIVE_STATUSES)
    request_stop(list(active.values_list("pk", flat=True)))
    session_list.delete(session)
    try:
        purge_deleted_session.apply_async(
            (session.pk,), countdown=session_list.undo_window().total_seconds() + 1
        )
    except (OperationalError, OSError):
        # The next read of the person's list purges it anyway.
        log.warning("could not schedule the purge of session %s", session.pk, exc_info=True)
    if current_session(request) == session.pk or not request.htmx:  # type: ignore[attr-defined]
        url = f"{reverse('home')}?deleted={session.pk}"
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)  # type: ignore[attr-defined]
    # The item goes (an empty swap) and the notice comes, out of band.
    return render(request, f"{TEMPLATE}#deleted", undo_context(session))


def undo_context(session: Session, reopen: bool = False) -> dict[str, Any]:
    return {
        "deleted": session,
        "undo_seconds": session_list.seconds_left(session),
        "reopen": reopen,
    }


@login_required
@require_POST
def session_undo(request: HttpRequest, session_id: int) -> HttpResponse:
    """Bring a session deleted a moment ago back, exactly as it was."""
    try:
        session = deleted_session_for_user(request.user, session_id)
    except Http404:
        # Purged already, or never the person's: the same sentence, and still a 404.
        response = render(request, f"{TEMPLATE}#notice", {"message": session_list.too_late(None)})
        response.status_code = 404
        return response
    too_late = session_list.undo_delete(session)
    if too_late:
        return render(request, f"{TEMPLATE}#notice", {"message": too_late})
    if request.POST.get("reopen") == "1":
        return HttpResponseClientRedirect(reverse("session", args=[session.pk]))
    context = sidebar_context(request)
    context.update(message=f"Restored '{session}'.", current=current_session(request))
    return render(request, f"{TEMPLATE}#restored", context)


@login_required
@require_POST
def session_duplicate(request: HttpRequest, session_id: int) -> HttpResponse:
    """A copy of the session with all its turns, the person's own, opened at once."""
    source = session_for_user(request.user, session_id)
    name = str(source)[: session_list.TITLE_MAX - len(" (copy)")]
    copy = fork_session(source, user_id(request.user), None, title=f"{name} (copy)")
    url = reverse("session", args=[copy.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)  # type: ignore[attr-defined]
