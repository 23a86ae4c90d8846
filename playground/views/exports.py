"""The owner's downloads of a session: Markdown and JSON (playground.export)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from playground.access import session_for_user
from playground.export import export_response


@login_required
@require_GET
def session_export(request: HttpRequest, session_id: int, fmt: str) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    return export_response(session, fmt, for_viewer=False)
