"""What the share-link tests share: a finished comparison with everything a pane shows,
links made as the Share panel makes them, and the Research team's personas."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils import timezone

from playground import share_links
from playground.models import Audience, Response, Session, ShareLink, Status
from tests.playground.helpers import make_turn, responses_of

ANSWER = "**Paris** is the capital of France."
REASONING = "The user asks about France; its capital is Paris."
KEY_LABEL = "alice-work-key-label"
OTHER_TITLE = "Alice's other, private session"


def finished_comparison(owner: Any) -> Session:
    """Alice's session: one turn answered by Echo at temperature 0.2, with reasoning, a
    tool call, usage, timings and cost, paid with her key named ``KEY_LABEL``; and another
    session of hers that no viewer may see."""
    turn = make_turn(
        owner, [("echo", {"temperature": 0.2, "repeat": 2})], "What is the capital of France?"
    )
    Response.objects.filter(turn=turn).update(
        status=Status.DONE,
        text=ANSWER,
        reasoning=REASONING,
        tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}],
        finish_reason="stop",
        input_tokens=30,
        output_tokens=12,
        ttft_ms=120,
        total_ms=900,
        tokens_per_s=14.2,
        cost=Decimal("0.0123"),
        cost_currency="USD",
        key_scope="user",
        key_label=f"your key '{KEY_LABEL}'",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    make_turn(owner, [("echo", {})], OTHER_TITLE)
    return turn.session


def link_to(
    session: Session, audience: str = Audience.TEAMS, expiry: str = "never"
) -> tuple[ShareLink, str]:
    """A link as the owner's Share panel makes it, and its token."""
    return share_links.create_link(session, session.owner, audience, expiry)


def expire(link: ShareLink) -> None:
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def shared_url(token: str) -> str:
    return reverse("shared", args=[token])


def tampered(token: str) -> str:
    """The token with one character changed."""
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def first_response(session: Session) -> Response:
    return responses_of(session.turns.order_by("index").first())[0]  # type: ignore[arg-type]
