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


def again_articles(pairs: list[tuple[Response, Response]], shared: bool = False) -> str:
    """Answers given again (playground.steering): each old one folded away as an earlier
    answer, its new one after it."""
    contexts = [
        (response_context(old, shared=shared), response_context(new, seq=0, shared=shared))
        for old, new in pairs
    ]
    return render_to_string("playground/_response.html#again-articles", {"pairs": contexts})


@off_request_thread
def render_answers(session_id: int, response_ids: list[int], shared: bool = False) -> str:
    """Answers added to turns a page shows, read from the database (for a share link's
    viewer: the control entry's were rendered for the owner): each after the answer it
    replaced, if any, else at the end of its pane."""
    new = list(
        Response.objects.filter(pk__in=response_ids, turn__session_id=session_id)
        .select_related("turn", "pane")
        .order_by("pane__position")
    )
    replaced = {
        (r.turn_id, r.pane_id): r
        for r in Response.objects.filter(turn_id__in={r.turn_id for r in new}, replaced=True)
        .select_related("turn", "pane")
        .order_by("pk")
    }
    pairs = [(replaced[r.turn_id, r.pane_id], r) for r in new if (r.turn_id, r.pane_id) in replaced]
    added = [r for r in new if (r.turn_id, r.pane_id) not in replaced]
    return again_articles(pairs, shared) + (turn_articles(added, shared) if added else "")


def live_control(control_id: str, turn_id: int, response_id: int = 0) -> str:
    """The page's note of the last turn and answer it shows and where the control stream
    was read."""
    return render_to_string(
        "playground/_response.html#live-control",
        {"control_id": control_id, "turn_id": turn_id, "response_id": response_id},
    )


@off_request_thread
def render_new_turn(
    session_id: int, turn_id: int, control_id: str, shared: bool = False
) -> tuple[str, list[int]]:
    """A new turn's articles read from the database (a control entry that does not carry
    them)."""
    responses = list(
        Response.objects.filter(turn_id=turn_id, turn__session_id=session_id, replaced=False)
        .select_related("turn", "pane")
        .order_by("pane__position")
    )
    if not responses:
        return "", []
    ids = [r.pk for r in responses]
    html = turn_articles(responses, shared) + live_control(control_id, turn_id, max(ids))
    return html, ids
