"""A person's own endpoint that misbehaves, in the worker: a stream that trickles without
end, one that never ends, one line without end, one compressed to inflate without end, a
stall, a server that never answers, a 429 storm. Each pane ends with a
sentence on its row (what the pane shows), what arrived before the fault kept, the
connection closed, and the turn's other pane answered. Against a real server on
loopback."""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from playground.models import Response, Status, Turn
from providers.base import ReadLimits
from tests.playground.helpers import endpoint_key, make_endpoint, make_turn, responses_of, run_turn
from tests.providers.upstream import FOREVER, OPENAI, Reply, bomb, serving

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context", "clean_redis", "loopback_allowed"),
]

MODEL = "org/model"


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.fixture
def limits(settings: Any) -> ReadLimits:
    settings.PLAYGROUND_READ_LIMITS = ReadLimits(
        line_bytes=4096, answer_chars=5_000, first_byte_seconds=2, stall_seconds=0.5
    )
    return settings.PLAYGROUND_READ_LIMITS


@sync_to_async
def own_turn(owner: Any, base_url: str) -> Turn:
    saved = make_endpoint(
        owner, base_url=f"{base_url}/v1", key="sk-own-1234567890", model_ids=[MODEL]
    )
    return make_turn(owner, [(endpoint_key(saved), {}), ("echo", {"delay_ms": 0})])


async def answered(
    owner: Any, reply: Reply, peak: list[int] | None = None
) -> tuple[Response, Response]:
    """Run a turn of the endpoint answering with ``reply`` and an echo pane; check that the
    endpoint's connection was closed; the two rows. With ``peak``, the most memory the
    process held while the turn ran (tracemalloc) is appended to it."""
    async with serving(reply) as (upstream, base_url):
        turn = await own_turn(owner, base_url)
        if peak is not None:
            tracemalloc.start()
        try:
            await run_turn(turn.pk)
        finally:
            if peak is not None:
                peak.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
        assert await upstream.cut()
    own, echo = await sync_to_async(responses_of)(turn)
    assert (echo.status, echo.text) == (Status.DONE, "Echo #1: Hello there")
    return own, echo


@pytest.mark.usefixtures("limits")
async def test_a_stream_that_trickles_without_end_is_stopped_at_the_longest_a_pane_may_run(
    owner: Any, settings: Any
) -> None:
    settings.PLAYGROUND_PANE_MAX_SECONDS = 1
    trickle = OPENAI.reply(OPENAI.endless("drip "), gap=0.1)

    own, _ = await answered(owner, trickle)

    assert (own.status, own.finish_reason) == (Status.STOPPED, "time_limit")
    assert own.error == (
        "Stopped after 1 s, the longest one answer may run here; what had arrived is kept."
    )
    assert own.text.startswith("drip drip ")
    assert 3 <= own.text.count("drip") <= 12


async def test_an_endless_stream_ends_at_the_longest_answer_with_its_text(
    owner: Any, limits: ReadLimits
) -> None:
    own, _ = await answered(owner, OPENAI.reply(OPENAI.endless("0123456789")))

    assert (own.status, own.finish_reason) == (Status.STOPPED, "length_limit")
    assert own.error == (
        "The answer reached 5,000 characters, the most one answer may have here; it was "
        "stopped there and what had arrived is kept"
    )
    assert own.text == "0123456789" * 500
    browser = Client()
    await sync_to_async(browser.force_login)(owner)
    page = await sync_to_async(browser.get)(reverse("session", args=[own.turn.session_id]))
    html = page.content.decode()
    assert "The answer reached 5,000 characters" in html
    assert "finish: length_limit" in html


@pytest.mark.usefixtures("limits")
async def test_one_line_without_end_fails_the_pane_with_what_arrived(owner: Any) -> None:
    line = itertools.chain(OPENAI.answer("Hello", end=False), itertools.repeat(b"x" * 1024))

    own, _ = await answered(owner, OPENAI.reply(line))

    assert (own.status, own.text) == (Status.ERROR, "Hello")
    assert own.error == (
        "OpenAI-compatible server sent one piece of its answer longer than 4 KB, the most "
        "read here at once; the answer was stopped there and what had arrived is kept"
    )


@pytest.mark.usefixtures("limits")
async def test_a_stream_compressed_to_inflate_without_end_fails_the_pane_at_the_line_bound(
    owner: Any,
) -> None:
    body = bomb("gzip", OPENAI.delta("Hello"), b"x")  # each chunk inflates to 64 MB of "x"
    reply = Reply(headers={"content-type": "text/event-stream", "content-encoding": "gzip"})

    peak: list[int] = []
    own, _ = await answered(owner, dataclasses.replace(reply, body=body), peak)

    assert peak[0] < 16 * 1024 * 1024, peak  # the whole turn, both panes, in the worker
    assert (own.status, own.text) == (Status.ERROR, "Hello")
    assert own.error == (
        "OpenAI-compatible server sent one piece of its answer longer than 4 KB, the most "
        "read here at once; the answer was stopped there and what had arrived is kept"
    )


@pytest.mark.usefixtures("limits")
async def test_a_stall_mid_stream_fails_the_pane_with_what_arrived(owner: Any) -> None:
    stall = OPENAI.reply(OPENAI.answer("Hello", " world", end=False), hold=True)

    own, _ = await answered(owner, stall)

    assert (own.status, own.text) == (Status.ERROR, "Hello world")
    assert own.error == (
        "OpenAI-compatible server sent nothing for 0.5 s, so the answer was stopped; "
        "what had arrived is kept"
    )


@pytest.mark.usefixtures("limits")
async def test_a_429_storm_is_tried_four_times_then_said(owner: Any) -> None:
    storm = Reply(
        429,
        {"content-type": "application/json", "retry-after": "0"},
        [b'{"error": {"message": "Too many requests"}}'],
    )
    async with serving(storm) as (upstream, base_url):
        turn = await own_turn(owner, base_url)
        await run_turn(turn.pk)
    own, _ = await sync_to_async(responses_of)(turn)

    assert upstream.requests == 4
    assert (own.status, own.text) == (Status.ERROR, "")
    assert own.error == (
        "Rate limited by OpenAI-compatible server (429): Too many requests"
        " — retried 3 times over 0 s"
    )


async def test_a_server_that_never_answers_fails_the_pane_after_one_wait(
    owner: Any, settings: Any
) -> None:
    settings.PLAYGROUND_READ_LIMITS = ReadLimits(first_byte_seconds=0.5, stall_seconds=0.5)
    async with serving(OPENAI.reply(OPENAI.answer("late"), delay=FOREVER)) as (upstream, url):
        turn = await own_turn(owner, url)
        await run_turn(turn.pk)
        assert await upstream.cut()
    own, echo = await sync_to_async(responses_of)(turn)

    assert upstream.requests == 1  # the wait is spent: no other try
    assert (own.status, own.text) == (Status.ERROR, "")
    assert own.error == "OpenAI-compatible server did not start answering within 0.5 s"
    assert (echo.status, echo.text) == (Status.DONE, "Echo #1: Hello there")
