"""Stop: a queued pane is stopped on the spot; a streaming pane gets a flag its worker
acts on (see test_runner for the worker's side)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse

from playground.models import Response, Status, Turn
from tests.playground.helpers import article, decoded, make_turn, responses_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def turn(owner: Any) -> Turn:
    return make_turn(owner, [("echo", {}), ("echo", {})], "Stop me")


def test_stopping_a_queued_pane_ends_it_at_once(
    turn: Turn, owner_client: Any, clean_redis: Any
) -> None:
    queued, other = responses_of(turn)

    response = owner_client.post(reverse("stop_pane", args=[queued.pane_id]))

    assert response.status_code == 204
    queued.refresh_from_db()
    assert queued.status == Status.STOPPED
    assert queued.finish_reason == "stopped"
    assert queued.finished_at is not None
    log = f"pg:log:{queued.pk}"
    assert decoded(clean_redis.xrange(log)) == [("0-1", {"k": "e", "st": "stopped"})]
    # It lives as long as every pane's log does (the setting), not an hour of its own.
    assert settings.PLAYGROUND_LOG_TTL - 60 < clean_redis.ttl(log) <= settings.PLAYGROUND_LOG_TTL
    # The other pane is untouched.
    other.refresh_from_db()
    assert other.status == Status.PENDING
    assert clean_redis.exists(f"pg:log:{other.pk}", f"pg:stop:{other.pk}") == 0


def test_a_stopped_queued_pane_shows_stopped_on_the_page(turn: Turn, owner_client: Any) -> None:
    queued = responses_of(turn)[0]
    owner_client.post(reverse("stop_pane", args=[queued.pane_id]))

    page = owner_client.get(reverse("session", args=[turn.session_id])).content.decode()

    shown = article(page, queued.pk)
    assert shown.startswith('<article class="response status-stopped"')
    assert ">Stopped</div>" in shown
    assert "data-active" not in shown


def test_stopping_a_streaming_pane_sets_the_flag_and_leaves_the_row_to_the_worker(
    turn: Turn, owner_client: Any, clean_redis: Any
) -> None:
    streaming = responses_of(turn)[0]
    Response.objects.filter(pk=streaming.pk).update(status=Status.STREAMING)
    log = f"pg:log:{streaming.pk}"
    clean_redis.xadd(log, {"k": "d", "t": "Half an ans", "n": 3, "ms": 30}, id="0-1")

    response = owner_client.post(reverse("stop_pane", args=[streaming.pane_id]))

    assert response.status_code == 204
    assert clean_redis.get(f"pg:stop:{streaming.pk}") == b"1"
    assert 0 < clean_redis.ttl(f"pg:stop:{streaming.pk}") <= 3600
    streaming.refresh_from_db()
    assert streaming.status == Status.STREAMING
    assert streaming.finished_at is None
    assert [i for i, _ in decoded(clean_redis.xrange(log))] == ["0-1"]  # no end yet


def test_stop_all_stops_every_active_pane_and_nothing_else(
    owner: Any, owner_client: Any, clean_redis: Any
) -> None:
    done_turn = make_turn(owner, [("echo", {}), ("echo", {})], "Old", status=Status.DONE)
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "New", session=done_turn.session)
    streaming, queued = responses_of(turn)
    Response.objects.filter(pk=streaming.pk).update(status=Status.STREAMING)

    response = owner_client.post(reverse("stop_session", args=[turn.session_id]))

    assert response.status_code == 204
    assert clean_redis.get(f"pg:stop:{streaming.pk}") == b"1"
    assert Response.objects.get(pk=streaming.pk).status == Status.STREAMING
    assert Response.objects.get(pk=queued.pk).status == Status.STOPPED
    for old in responses_of(done_turn):
        assert Response.objects.get(pk=old.pk).status == Status.DONE
        assert clean_redis.exists(f"pg:stop:{old.pk}", f"pg:log:{old.pk}") == 0
