"""Redis away for a request: a sentence and 503, never a 500, and nothing half done. A
Send that Redis cannot count saves nothing; a turn the broker cannot take ends its answers
at once with a sentence, settled with nothing used; Stop says it could not be given."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import kombu.exceptions
import pytest
from django.urls import reverse

from playground import tasks
from playground.database_away import REDIS_SENTENCE
from playground.models import Quota, QuotaCounter, Response, Session, Status, Turn, UsageEntry
from playground.redis_sync import redis_client
from tests.playground.helpers import make_turn, send_form

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def redis_away(settings: Any) -> Iterator[None]:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens here once it is closed
    redis_client.cache_clear()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    try:
        yield
    finally:
        redis_client.cache_clear()


def test_a_send_with_redis_away_says_so_and_saves_nothing(
    owner_client: Any, redis_away: None
) -> None:
    answer = owner_client.post(reverse("send_new"), send_form("Hello"), **HTMX)

    assert (answer.status_code, answer.content.decode()) == (503, REDIS_SENTENCE)
    assert answer["Retry-After"] == "5"
    assert (Session.objects.count(), Turn.objects.count(), Response.objects.count()) == (0, 0, 0)


def test_a_page_with_redis_away_is_a_page_that_says_so(
    owner: Any, owner_client: Any, redis_away: None
) -> None:
    turn = make_turn(owner, [("echo", {})], status=Status.STREAMING)
    page = owner_client.post(reverse("stop_session", args=[turn.session_id]))

    assert page.status_code == 503
    assert REDIS_SENTENCE in page.content.decode()
    assert "Traceback" not in page.content.decode()


def test_stop_with_redis_away_says_it_was_not_given(
    owner: Any, owner_client: Any, redis_away: None
) -> None:
    turn = make_turn(owner, [("echo", {}), ("echo", {})], status=Status.STREAMING)

    answer = owner_client.post(reverse("stop_session", args=[turn.session_id]), **HTMX)

    assert (answer.status_code, answer.content.decode()) == (503, REDIS_SENTENCE)
    assert set(Response.objects.values_list("status", flat=True)) == {Status.STREAMING}


def test_a_turn_the_broker_cannot_take_ends_its_answers_with_a_sentence(
    owner: Any, owner_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_away(*_args: Any) -> None:
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(tasks.run_turn, "delay", broker_away)
    Quota.objects.create(user=owner, tokens_per_month=10_000_000, spend_per_month=100)
    form = send_form("Hello", panes=[("echo", {}), ("echo", {"repeat": 2})])

    answer = owner_client.post(reverse("send_new"), form, **HTMX)

    assert (answer.status_code, answer.content.decode()) == (503, REDIS_SENTENCE), answer.content
    rows = list(Response.objects.order_by("pk"))
    assert len(rows) == 2  # the prompt is kept, in a turn that says what happened
    assert Turn.objects.get().prompt == "Hello"
    for row in rows:
        assert (row.status, row.error) == (Status.ERROR, tasks.NOT_QUEUED)
        assert (row.input_tokens, row.output_tokens) == (0, 0)
    # Settled once, with nothing used: the reservations are given back.
    assert UsageEntry.objects.filter(input_tokens=0, output_tokens=0).count() == 2
    counters = list(QuotaCounter.objects.all())
    assert counters and all(c.reserved_tokens == 0 and c.reserved_spend == 0 for c in counters)


def test_a_rematch_the_broker_cannot_take_ends_its_first_answers_with_a_sentence(
    owner: Any, owner_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    turn = make_turn(owner, [("echo", {})], "Q1", status=Status.DONE)

    def broker_away(*_args: Any) -> None:
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(tasks.run_rematch, "delay", broker_away)
    answer = owner_client.post(
        reverse("rematch", args=[turn.session_id]), {"rematch-model": ["echo"]}, **HTMX
    )

    assert (answer.status_code, answer.content.decode()) == (503, REDIS_SENTENCE)
    copy = Session.objects.exclude(pk=turn.session_id).get()
    new = list(Response.objects.filter(turn__session=copy, status=Status.ERROR))
    assert [r.error for r in new] == [tasks.NOT_QUEUED]
    assert not Response.objects.filter(turn__session=copy, status=Status.PENDING).exists()
