"""The HTML fragments the websocket sends; the same templates render the full page."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.template.loader import get_template, render_to_string

from playground import panelog
from playground.models import Response, Turn
from playground.views.context import response_context

_batch_template = None


def render_batch(response_id: int, batch: panelog.Batch) -> str:
    """New text of a streaming pane (appended) and its refreshed status line."""
    global _batch_template
    if _batch_template is None:
        _batch_template = get_template("playground/_response.html#delta")
    return str(_batch_template.render({"rid": response_id, "b": batch}))


@sync_to_async
def render_final(response_id: int, last_seq: int) -> str:
    response = Response.objects.select_related("turn", "pane").get(pk=response_id)
    context = response_context(response, seq=last_seq)
    return render_to_string("playground/_response.html#oob-response", {"r": context})


@sync_to_async
def render_new_turn(session_id: int, turn_id: int, control_id: str) -> tuple[str, list[int]]:
    turn = Turn.objects.filter(pk=turn_id, session_id=session_id).first()
    if turn is None:
        return "", []
    responses = list(turn.responses.select_related("turn", "pane").order_by("pane__position"))
    contexts = [response_context(r, seq=0) for r in responses]
    html = render_to_string(
        "playground/_response.html#new-turn",
        {"responses": contexts, "control_id": control_id, "turn_id": turn.pk},
    )
    return html, [r.pk for r in responses]
