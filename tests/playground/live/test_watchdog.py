"""A pane whose worker died (no heartbeat) is ended as "interrupted" with what its log
holds, or its checkpoint when Redis lost the log; a pane whose worker is alive is left
alone, also when a restart of Redis lost its heartbeat for a moment."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse

from playground.live import watchdog
from playground.live.watchdog import INTERRUPTED_MESSAGE, reap_dead_sync
from playground.models import Response, Status, Turn
from tests.playground.helpers import article, decoded, make_turn, responses_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first look without a heartbeat ends the pane (the test removed it long ago)."""
    monkeypatch.setattr(watchdog, "CONFIRM_S", 0)


@pytest.fixture
def turn(owner: Any, clean_redis: Any) -> Turn:
    """Two streaming panes with a log each; only the second one's worker is alive."""
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "Will it survive?")
    turn.responses.update(status=Status.STREAMING)
    dead, alive = responses_of(turn)
    for response in (dead, alive):
        log = f"pg:log:{response.pk}"
        clean_redis.xadd(log, {"k": "d", "t": "Half ", "n": 1, "ms": 120, "ttft": 120}, id="0-1")
        clean_redis.xadd(log, {"k": "d", "t": "an answer", "n": 3, "ms": 480}, id="0-2")
    clean_redis.set(f"pg:hb:{alive.pk}", 1, ex=6)
    return turn


def test_a_pane_without_heartbeat_is_interrupted_with_its_log_text(
    turn: Turn, clean_redis: Any
) -> None:
    dead, alive = responses_of(turn)

    reaped = reap_dead_sync([dead.pk, alive.pk])

    assert reaped == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == Status.INTERRUPTED
    assert dead.text == "Half an answer"
    assert dead.error == INTERRUPTED_MESSAGE
    assert dead.finish_reason == "interrupted"
    assert (dead.ttft_ms, dead.total_ms, dead.output_tokens) == (120, 480, 3)
    assert dead.usage_estimated is True
    assert dead.finished_at is not None
    assert decoded(clean_redis.xrange(f"pg:log:{dead.pk}"))[-1] == (
        "0-3",
        {"k": "e", "st": "interrupted"},
    )


def test_a_pane_with_a_live_heartbeat_is_left_alone(turn: Turn, clean_redis: Any) -> None:
    _dead, alive = responses_of(turn)

    assert reap_dead_sync([alive.pk]) == []

    alive.refresh_from_db()
    assert (alive.status, alive.text, alive.finished_at) == (Status.STREAMING, "", None)
    assert [i for i, _ in decoded(clean_redis.xrange(f"pg:log:{alive.pk}"))] == ["0-1", "0-2"]


def test_reaping_twice_changes_nothing_more(turn: Turn, clean_redis: Any) -> None:
    dead, _alive = responses_of(turn)
    reap_dead_sync([dead.pk])
    after_first = Response.objects.filter(pk=dead.pk).values().get()

    assert reap_dead_sync([dead.pk]) == []

    assert Response.objects.filter(pk=dead.pk).values().get() == after_first
    assert len(clean_redis.xrange(f"pg:log:{dead.pk}")) == 3


def test_the_session_page_shows_the_dead_pane_as_interrupted(turn: Turn, owner_client: Any) -> None:
    dead, alive = responses_of(turn)

    page = owner_client.get(reverse("session", args=[turn.session_id])).content.decode()

    shown = article(page, dead.pk)
    assert shown.startswith('<article class="response status-interrupted"')
    assert '<div class="text markdown"><p>Half an answer</p>' in shown
    assert f'<p class="error" role="alert">{INTERRUPTED_MESSAGE}</p>' in shown
    assert ">Interrupted · 3 tokens (estimated) · TTFT 0.12 s · 0.48 s</div>" in shown
    assert "data-active" not in shown
    # The live pane still streams, showing what its log holds so far.
    live = article(page, alive.pk)
    assert 'data-active="1"' in live
    assert f'<div class="text streaming" id="response-{alive.pk}-text">Half an answer</div>' in live
    assert "Interrupted" not in live


def test_a_log_lost_by_redis_leaves_the_checkpoint_text(turn: Turn, clean_redis: Any) -> None:
    """Redis restarted without the log (or lost its last second); the worker died too. The
    row's checkpoint, written about once a second while it streamed, holds more."""
    dead, _alive = responses_of(turn)
    Response.objects.filter(pk=dead.pk).update(
        text="Half an answer, and then some", reasoning="Thinking it over"
    )
    clean_redis.delete(f"pg:log:{dead.pk}")
    clean_redis.xadd(f"pg:log:{dead.pk}", {"k": "d", "t": "more", "n": 9, "ms": 900}, id="0-9")

    assert reap_dead_sync([dead.pk]) == [dead.pk]

    dead.refresh_from_db()
    assert (dead.status, dead.text) == (Status.INTERRUPTED, "Half an answer, and then some")
    assert dead.reasoning == "Thinking it over"
    assert decoded(clean_redis.xrange(f"pg:log:{dead.pk}"))[-1] == (
        "0-10",
        {"k": "e", "st": "interrupted"},
    )


def test_a_heartbeat_lost_for_one_look_does_not_end_the_pane(
    turn: Turn, clean_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis restarted: every heartbeat is gone at once, but the worker beats again within
    1.5 s. One look without a heartbeat is not enough; two, 2 s apart, are."""
    monkeypatch.setattr(watchdog, "CONFIRM_S", 1.9)
    _dead, alive = responses_of(turn)
    clean_redis.delete(f"pg:hb:{alive.pk}")

    assert reap_dead_sync([alive.pk]) == []  # the restart's look

    clean_redis.set(f"pg:hb:{alive.pk}", 1, ex=6)  # the worker beats again
    clean_redis.set(f"pg:nohb:{alive.pk}", time.time() - 2, ex=10)  # 2 s later
    assert reap_dead_sync([alive.pk]) == []
    alive.refresh_from_db()
    assert alive.status == Status.STREAMING

    clean_redis.delete(f"pg:hb:{alive.pk}")  # now its worker dies: two looks end it
    clean_redis.delete(f"pg:nohb:{alive.pk}")
    assert reap_dead_sync([alive.pk]) == []
    clean_redis.set(f"pg:nohb:{alive.pk}", time.time() - 2, ex=10)
    assert reap_dead_sync([alive.pk]) == [alive.pk]
