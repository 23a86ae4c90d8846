"""The contract every adapter keeps, run over the table in contract.py: each adapter, fed
its vendor's recorded bytes through a mocked endpoint, must yield the same normalized events
and failures. Only the pairs that apply are generated (an API without tools gets no tool
test); what is a vendor's own (request bytes, signing, token exchange, odd shapes) is in
test_<vendor>.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from providers.base import ErrorKind, Event, Failure, ProviderError, ToolCall, Usage
from providers.registry import PROVIDERS, provider_class
from tests.providers.contract import (
    ADAPTERS,
    ELSEWHERE,
    WEATHER,
    Absent,
    Adapter,
    Stream,
)
from tests.providers.replay import FakeSleep, Replay, cut_before, head, pieces


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def ok(adapter: Adapter, body: bytes | Replay) -> httpx.Response:
    stream = body if isinstance(body, Replay) else Replay(pieces(body))
    return httpx.Response(200, headers={"content-type": adapter.content_type}, stream=stream)


def serve(
    router: respx.MockRouter, adapter: Adapter, side_effect: Any, url: str = ""
) -> respx.Route:
    """Mock what the adapter must do first (a token exchange), then its endpoint, or with
    ``url`` the endpoint that answers instead of the default mock there."""
    if adapter.setup is not None:
        adapter.setup(router)
    return router.route(method=adapter.method, url=url or adapter.url).mock(side_effect=side_effect)


def always(adapter: Adapter, body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: ok(adapter, body)


async def run(
    adapter: Adapter, sleep: FakeSleep | None = None, *, tools: bool = False, **kw: Any
) -> list[Event]:
    request = adapter.request(tools=(WEATHER,) if tools else ())
    async with httpx.AsyncClient() as client:
        stream = adapter.provider().stream(client, request, sleep=sleep or FakeSleep(), **kw)
        return [e async for e in stream]


def ids(pairs: list[tuple[Adapter, Stream]]) -> list[str]:
    return [f"{a.name}-{s}" for a, s in pairs]


def with_(field: str) -> list[Adapter]:
    return [a for a in ADAPTERS if not isinstance(getattr(a, field), Absent)]


ERRORS = [(a, s) for a in ADAPTERS for s in a.errors]


def shown_before(stream: Stream) -> bool:
    """Whether anything reached the person before the error (then it is never retried)."""
    *shown, failure = stream.events
    assert isinstance(failure, Failure)
    return bool(shown)


TRANSIENT_FIRST = [
    (a, s)
    for a, s in ERRORS
    if not shown_before(s) and isinstance(s.events[-1], Failure) and not s.events[-1].permanent
]


# --------------------------------------------------------------------------- the table


def test_the_table_covers_every_registered_adapter() -> None:
    names = [a.name for a in ADAPTERS]
    assert len(names) == len(set(names))
    assert sorted([*names, *ELSEWHERE]) == sorted(PROVIDERS)
    for adapter in ADAPTERS:
        assert provider_class(adapter.name).display_name == adapter.display, adapter
        assert isinstance(adapter.provider(), provider_class(adapter.name))


def test_an_adapter_without_tools_says_so_and_one_with_tools_has_a_recording() -> None:
    for adapter in ADAPTERS:
        has_tools = provider_class(adapter.name).supports_tools
        assert has_tools != isinstance(adapter.tool_call, Absent), adapter


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_normal_answer_with_usage(adapter: Adapter, router: respx.MockRouter) -> None:
    route = serve(router, adapter, always(adapter, adapter.answer.body))

    events = await run(adapter)

    assert events == list(adapter.answer.events)
    assert route.call_count == 1
    usage = [e for e in events if isinstance(e, Usage)]
    if adapter.usage is True:
        assert len(usage) == 1 and usage[0].output_tokens, adapter
        assert events.index(usage[0]) == len(events) - 2  # usage comes just before the finish
    else:
        assert usage == []


@pytest.mark.parametrize("adapter", with_("reasoning"), ids=str)
async def test_reasoning_streams_before_the_answer(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    assert isinstance(adapter.reasoning, Stream)
    serve(router, adapter, always(adapter, adapter.reasoning.body))

    events = await run(adapter)

    assert events == list(adapter.reasoning.events)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "ReasoningDelta"
    assert "TextDelta" in kinds
    assert kinds.index("TextDelta") > max(i for i, k in enumerate(kinds) if k == "ReasoningDelta")


@pytest.mark.parametrize("adapter", with_("tool_call"), ids=str)
async def test_tool_call_is_assembled(adapter: Adapter, router: respx.MockRouter) -> None:
    assert isinstance(adapter.tool_call, Stream)
    serve(router, adapter, always(adapter, adapter.tool_call.body))

    events = await run(adapter, tools=True)

    assert events == list(adapter.tool_call.events)
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls and all(c.id and c.name and c.arguments.startswith("{") for c in calls)
    assert events[-1] == adapter.tool_call.events[-1]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_auth_error_is_permanent_not_retried_and_holds_no_key(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    refusal = adapter.auth
    refused = serve(router, adapter, lambda request: refusal.response(), refusal.url)
    sleep = FakeSleep()

    events = await run(adapter, sleep)

    assert events == [refusal.failure]
    assert refusal.failure.kind is ErrorKind.AUTH and refusal.failure.permanent
    assert refused.call_count == 1
    assert sleep.delays == []
    assert adapter.secrets  # the key (and secret parts) the message must not hold
    for secret in adapter.secrets:
        assert secret not in refusal.failure.message
    # Refused at the token exchange, the chat endpoint is never asked.
    assert len(router.calls) == 1


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_429_waits_exactly_as_told_then_streams(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    answers = [limited.response() for limited in adapter.rate_limits]
    route = serve(router, adapter, [*answers, ok(adapter, adapter.answer.body)])
    sleep = FakeSleep()
    retries: list[str] = []

    async def on_retry(attempt: int, delay: float, error: ProviderError) -> None:
        retries.append(error.message)

    events = await run(adapter, sleep, on_retry=on_retry)

    assert events == list(adapter.answer.events)
    assert sleep.delays == [limited.delay for limited in adapter.rate_limits]
    assert retries == [limited.message for limited in adapter.rate_limits]
    assert route.call_count == len(adapter.rate_limits) + 1


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_429_every_time_gives_up_after_three_retries(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    limited = adapter.rate_limits[0]
    route = serve(router, adapter, lambda request: limited.response())
    sleep = FakeSleep()

    events = await run(adapter, sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            f"{limited.message} — retried 3 times over {3 * limited.delay:.0f} s",
            permanent=False,
            status=limited.status,
        )
    ]
    assert sleep.delays == [limited.delay] * 3
    assert route.call_count == 4


# --------------------------------------------------------------------------- inside the stream


@pytest.mark.parametrize(("adapter", "stream"), ERRORS, ids=ids(ERRORS))
async def test_error_inside_the_stream(
    adapter: Adapter, stream: Stream, router: respx.MockRouter
) -> None:
    route = serve(router, adapter, always(adapter, stream.body))
    sleep = FakeSleep()

    events = await run(adapter, sleep)

    failure = stream.events[-1]
    assert isinstance(failure, Failure)
    if shown_before(stream) or failure.permanent:
        # Text was shown, or trying again cannot help: reported at once, as it is.
        assert events == list(stream.events)
        assert route.call_count == 1
        assert sleep.delays == []
    else:
        # Nothing shown yet and worth another try: retried, then reported.
        assert len(events) == 1
        got = events[0]
        assert isinstance(got, Failure)
        assert (got.kind, got.permanent, got.status) == (failure.kind, False, failure.status)
        assert got.message.startswith(f"{failure.message} — retried 3 times over ")
        assert route.call_count == 4
        assert len(sleep.delays) == 3


@pytest.mark.parametrize(("adapter", "stream"), TRANSIENT_FIRST, ids=ids(TRANSIENT_FIRST))
async def test_error_before_any_text_is_retried_then_streams(
    adapter: Adapter, stream: Stream, router: respx.MockRouter
) -> None:
    route = serve(router, adapter, [ok(adapter, stream.body), ok(adapter, adapter.answer.body)])
    sleep = FakeSleep()

    assert await run(adapter, sleep) == list(adapter.answer.events)
    assert route.call_count == 2
    assert len(sleep.delays) == 1


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_malformed_line_is_skipped_and_the_rest_read(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    serve(router, adapter, always(adapter, adapter.malformed.body))

    events = await run(adapter)

    assert events == list(adapter.malformed.events)
    assert not any(isinstance(e, Failure) for e in events)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_connection_cut_mid_answer_keeps_the_text_and_is_not_retried(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    cut = adapter.cut
    route = serve(
        router, adapter, lambda request: ok(adapter, cut_before(cut.stream.body, cut.marker))
    )
    sleep = FakeSleep()

    events = await run(adapter, sleep)

    assert cut.events  # something was shown before the drop
    assert events == [*cut.events, adapter.cut_failure()]
    assert route.call_count == 1
    assert sleep.delays == []


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_body_closed_before_the_answer_is_complete_is_a_cut(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    serve(router, adapter, always(adapter, head(adapter.answer.body, adapter.end)))

    events = await run(adapter)

    assert adapter.unfinished  # something was shown before the end that never came
    assert events == [*adapter.unfinished, adapter.cut_failure()]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=str)
async def test_closing_early_closes_the_http_response(
    adapter: Adapter, router: respx.MockRouter
) -> None:
    body = Replay(pieces(adapter.answer.body, size=16))
    serve(router, adapter, [ok(adapter, body)])

    async with httpx.AsyncClient() as client:
        stream = adapter.provider().stream(client, adapter.request(), sleep=FakeSleep())
        first = await anext(stream)
        await stream.aclose()
        closed_at_once = body.closed

    assert first == adapter.answer.events[0]
    assert closed_at_once
    assert body.read < len(body.chunks)
