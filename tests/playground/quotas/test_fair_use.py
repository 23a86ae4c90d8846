"""Fair use with no admin action: turns at once and Sends a minute per person hold under
parallel Sends, and no answer runs longer than the longest a pane may."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.models import Response, Status, Turn
from tests.playground.helpers import make_turn, responses_of, run_turn, send_form
from tests.playground.quotas.test_quota_limits import send_at_once

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_redis")
def test_one_person_gets_at_most_the_fair_number_of_turns_at_once(
    owner: Any, outsider: Any, settings: Any
) -> None:
    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 2
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 0

    bodies = send_at_once(owner, 8, panes=(("echo", {}),))

    assert sum("/s/" in b for b in bodies) == 2
    assert sum("at most 2 may run at once" in b for b in bodies) == 6
    # Someone else is not held back by them.
    assert sum("/s/" in b for b in send_at_once(outsider, 2, panes=(("echo", {}),))) == 2
    # When one ends, the next turn is let in.
    Response.objects.filter(turn=Turn.objects.filter(session__owner=owner).first()).update(
        status=Status.DONE
    )
    assert sum("/s/" in b for b in send_at_once(owner, 2, panes=(("echo", {}),))) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_redis")
def test_sends_a_minute_hold_under_parallel_sends(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 0
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 3

    bodies = send_at_once(owner, 7, panes=(("echo", {}),))

    assert sum("/s/" in b for b in bodies) == 3
    refused = [b for b in bodies if "the most one person may" in b]
    assert len(refused) == 4
    assert "You have sent 3 turns in the last minute" in refused[0]
    assert Turn.objects.count() == 3


@pytest.mark.django_db
def test_a_quota_of_ones_own_sets_the_turns_at_once(
    owner: Any, owner_client: Any, settings: Any, clean_redis: Any
) -> None:
    from playground.models import Quota

    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 1
    Quota.objects.create(scope="user", user=owner, concurrent_turns=2)
    for _ in range(2):
        assert "HX-Redirect" in owner_client.post(reverse("send_new"), send_form(), **HTMX)
    third = owner_client.post(reverse("send_new"), send_form(), **HTMX).content.decode()
    assert "You have 2 turns still answering; at most 2 may run at once." in third


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_context", "clean_redis")
async def test_an_answer_is_stopped_at_the_longest_a_pane_may_run(
    owner: Any, settings: Any
) -> None:
    from asgiref.sync import sync_to_async

    settings.PLAYGROUND_PANE_MAX_SECONDS = 1
    turn = await sync_to_async(make_turn)(
        owner, [("echo", {"delay_ms": 100, "repeat": 50})], "one two three"
    )

    await run_turn(turn.pk)

    (row,) = await sync_to_async(responses_of)(turn)
    assert row.status == Status.STOPPED
    assert row.finish_reason == "time_limit"
    assert row.error.startswith("Stopped after 1 s, the longest one answer may run here")
    assert row.text.startswith("Echo #1: one")
    assert 3 < len(row.text.split()) < 50
