"""The HTML fragments the websocket sends; the same templates render the full page."""

from __future__ import annotations

from django.template.loader import render_to_string

from playground.live import response_log
from playground.live.db_threads import off_request_thread
from playground.models import Response
from playground.pane_view import response_context
from playground.templatetags.playground import Stamp, live_status


def render_batch(response_id: int, batch: response_log.Batch) -> str:
    """New text of a streaming pane (appended) and its refreshed status line: the one
    fragment sent many times a second per pane, so filled from a stamp of its partial."""
    return _DELTA.fill(
        rid=response_id,
        text=batch.text,
        reasoning=batch.reasoning,
        seq=batch.last_seq,
        elapsed=batch.elapsed_ms,
        status=live_status(batch),
    )


_DELTA = Stamp("playground/_response.html#delta")


@off_request_thread
def render_final(response_id: int, last_seq: int, shared: bool = False) -> str:
    """The finished answer replacing its streaming article (``shared``: as a share link's
    viewer sees it, ``pane_view.response_context``)."""
    response = Response.objects.select_related("turn", "pane").get(pk=response_id)
    context = response_context(response, seq=last_seq, shared=shared)
    return render_to_string("playground/_response.html#oob-response", {"r": context})


def turn_articles(responses: list[Response], shared: bool = False) -> str:
    """A new turn's articles, one per pane, each added to its pane's history. The Send
    view renders them once, from the rows it has just saved, into the control stream's
    entry; the owner's followers send them on as they are (a share link's render their
    own, ``shared``)."""
    contexts = [response_context(r, seq=0, shared=shared) for r in responses]
    return render_to_string("playground/_response.html#turn-articles", {"responses": contexts})


def live_control(control_id: str, turn_id: int) -> str:
    """The page's note of the last turn it shows and where the control stream was read."""
    return render_to_string(
        "playground/_response.html#live-control", {"control_id": control_id, "turn_id": turn_id}
    )


@off_request_thread
def render_new_turn(
    session_id: int, turn_id: int, control_id: str, shared: bool = False
) -> tuple[str, list[int]]:
    """A new turn's articles read from the database (a control entry that does not carry
    them)."""
    responses = list(
        Response.objects.filter(turn_id=turn_id, turn__session_id=session_id)
        .select_related("turn", "pane")
        .order_by("pane__position")
    )
    if not responses:
        return "", []
    html = turn_articles(responses, shared) + live_control(control_id, turn_id)
    return html, [r.pk for r in responses]
