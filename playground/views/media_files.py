"""A turn's videos, recordings and frames, served to whoever may see its session: the owner
(the session's access check) or a share link's viewer (the link's). Nothing else serves
them: var/media is not a static directory."""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET

from playground import media
from playground.access import session_for_user
from playground.byte_ranges import file_response
from playground.models import Session, Turn
from playground.views.shared import link_for_request


@login_required
@require_GET
def turn_media(
    request: HttpRequest, session_id: int, turn_id: int, n: int, frame: int | None = None
) -> HttpResponseBase:
    return _serve(request, session_for_user(request.user, session_id), turn_id, n, frame)


@require_GET
def shared_turn_media(
    request: HttpRequest, token: str, turn_id: int, n: int, frame: int | None = None
) -> HttpResponseBase:
    link = link_for_request(request, token)
    if isinstance(link, HttpResponse):
        return link
    return _serve(request, link.session, turn_id, n, frame)


def _serve(
    request: HttpRequest, session: Session, turn_id: int, n: int, frame: int | None
) -> HttpResponseBase:
    turn = Turn.objects.filter(pk=turn_id, session=session).only("media").first()
    entries = turn.media if turn is not None else []
    if n >= len(entries):
        raise Http404("No such attachment.")
    entry = entries[n]
    response: HttpResponseBase
    if frame is not None:
        frames = entry.get("frames") or []
        if entry.get("form") != "frames" or frame >= len(frames) or "data" not in frames[frame]:
            raise Http404("No such frame.")
        try:
            data = base64.b64decode(frames[frame]["data"], validate=True)
        except (binascii.Error, ValueError):
            raise Http404("No such frame.") from None
        response = HttpResponse(data, content_type=frames[frame].get("mime_type", "image/png"))
    elif entry.get("form") == "file":
        try:
            opened = media.file_path(entry["sha256"]).open("rb")
        except (OSError, ValueError, KeyError):
            raise Http404("This file is no longer kept.") from None
        response = file_response(request, opened, entry.get("mime_type", ""))
    else:
        raise Http404("Given by web address: nothing is kept here.")
    # The type is ours (read from the file's first bytes), never the browser's guess; the
    # file is private to those who may see the session.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    return response
