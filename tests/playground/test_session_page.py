"""The session page shows each streaming pane with what its log holds, and tells the page's
follower where to go on from; a pane that ends while the page is being built must not be
left looking live."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.models import Response, Status
from playground.views import pages
from tests.playground.helpers import article, make_turn, responses_of

pytestmark = pytest.mark.django_db

ANSWER = "Echo #1: all of it"


def test_a_pane_that_ends_between_its_row_and_its_log_is_shown_ended(
    owner: Any, owner_client: Any, clean_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker ends the pane just after the page read its row (still streaming) and just
    before it reads its log (which then holds the end entry). Shown as streaming, with the
    end entry's sequence number, the follower would wait after the end forever."""
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "Race me")
    turn.responses.update(status=Status.STREAMING)
    ending, streaming = responses_of(turn)
    for response in (ending, streaming):
        clean_redis.xadd(
            f"pg:log:{response.pk}", {"k": "d", "t": "Echo #1: ", "n": 3, "ms": 5}, id="0-1"
        )
        clean_redis.set(f"pg:hb:{response.pk}", 1, ex=6)

    def the_worker_ends_one_pane_meanwhile(ids: list[int]) -> list[int]:
        # What the worker does when a pane ends: the row first, then the log's end entry.
        Response.objects.filter(pk=ending.pk).update(status=Status.DONE, text=ANSWER)
        log = f"pg:log:{ending.pk}"
        clean_redis.xadd(log, {"k": "d", "t": "all of it", "n": 6, "ms": 9}, id="0-2")
        clean_redis.xadd(log, {"k": "e", "st": "done"}, id="0-3")
        return []  # every pane's heartbeat is alive: nothing reaped

    monkeypatch.setattr(pages, "reap_dead_sync", the_worker_ends_one_pane_meanwhile)

    page = owner_client.get(reverse("session", args=[turn.session_id])).content.decode()

    ended = article(page, ending.pk)
    assert ended.startswith('<article class="response status-done"')
    assert f"<p>{ANSWER}</p>" in ended
    assert "data-active" not in ended
    # The other pane still streams, and its follower goes on after what the page shows.
    live = article(page, streaming.pk)
    assert 'data-active="1"' in live
    assert f'id="response-{streaming.pk}-status" data-seq="1"' in live
