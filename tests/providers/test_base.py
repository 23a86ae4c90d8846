"""The provider contract: parameters, errors, retries, and keeping keys secret."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from providers.base import (
    MAX_TOKENS,
    SEED,
    STOP,
    TEMPERATURE,
    ChatRequest,
    Credentials,
    ErrorKind,
    Event,
    Failure,
    Finish,
    Message,
    Param,
    ParamError,
    Provider,
    ProviderError,
    RetryPolicy,
    TextDelta,
    clean_params,
    error_for_status,
    network_error,
    retry_after_seconds,
)
from providers.errors import classify, redact
from providers.openai_compat import OpenAI
from tests.providers.replay import KEY, FakeSleep, chat, collect

# --------------------------------------------------------------------------- parameters


def test_float_param_converts_and_checks_bounds() -> None:
    assert TEMPERATURE.clean("0.7") == 0.7
    assert TEMPERATURE.clean(2) == 2.0
    assert TEMPERATURE.clean(None) is None
    assert TEMPERATURE.clean("") is None
    with pytest.raises(ParamError) as error:
        TEMPERATURE.clean(2.5)
    assert str(error.value) == "Temperature must be a number from 0 to 2; got 2.5."
    with pytest.raises(ParamError, match="Temperature must be a number from 0 to 2."):
        TEMPERATURE.clean("warm")
    with pytest.raises(ParamError):
        TEMPERATURE.clean("nan")


def test_int_param_refuses_fractions_and_out_of_range() -> None:
    assert MAX_TOKENS.clean("256") == 256
    assert MAX_TOKENS.clean(256.0) == 256
    with pytest.raises(ParamError, match="Max output tokens must be a whole number from 1"):
        MAX_TOKENS.clean(1.5)
    with pytest.raises(ParamError, match="got 0."):
        MAX_TOKENS.clean(0)
    with pytest.raises(ParamError, match="Seed must be a whole number from 0 to"):
        SEED.clean(-1)


def test_stop_sequences_from_lines_or_list() -> None:
    assert STOP.clean("END\n\nSTOP") == ["END", "STOP"]
    assert STOP.clean(["a", "", "b"]) == ["a", "b"]
    assert STOP.clean("\n") is None
    with pytest.raises(ParamError, match="Stop sequences takes at most 4 sequences."):
        STOP.clean(["1", "2", "3", "4", "5"])


def test_choice_bool_and_str_params() -> None:
    effort = Param("effort", "Effort", "choice", "", choices=("low", "high"))
    assert effort.clean("low") == "low"
    with pytest.raises(ParamError, match="Effort must be one of low, high."):
        effort.clean("max")
    flag = Param("flag", "Flag", "bool", "")
    assert flag.clean("on") is True
    assert flag.clean("0") is False
    with pytest.raises(ParamError, match="Flag must be on or off."):
        flag.clean("perhaps")
    text = Param("name", "Name", "str", "", maximum=3)
    with pytest.raises(ParamError, match="Name is longer than 3 characters."):
        text.clean("four")


def test_clean_params_refuses_unknown_names_and_drops_empty_values() -> None:
    declared = (TEMPERATURE, MAX_TOKENS)
    assert clean_params(declared, {"temperature": "1", "max_tokens": ""}) == {"temperature": 1.0}
    with pytest.raises(ParamError) as error:
        clean_params(declared, {"temperature": 1, "top_k": 3, "bogus": 1})
    assert str(error.value) == "Unknown parameter: bogus, top_k."


# --------------------------------------------------------------------------- errors


def test_error_for_status_words_and_kinds() -> None:
    error = error_for_status("OpenAI", 401, "  Incorrect\n key  ")
    assert (error.kind, error.permanent, error.status) == (ErrorKind.AUTH, True, 401)
    assert error.message == "OpenAI rejected the API key (401): Incorrect key"
    assert error_for_status("X", 503).kind is ErrorKind.UPSTREAM
    assert not error_for_status("X", 503).permanent
    assert error_for_status("X", 429, headers={"Retry-After": "4"}).retry_after == 4.0


def test_retry_after_headers() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_credentials_repr_never_shows_the_key() -> None:
    credentials = Credentials(api_key=KEY, extra={"secret_key": "shh-very-secret"})
    request = ChatRequest("m", [Message("user", "hi")], credentials=credentials)
    for text in (repr(credentials), str(credentials), repr(request)):
        assert KEY not in text
        assert "shh-very-secret" not in text


def test_network_error_message_never_contains_the_key() -> None:
    exc = httpx.ConnectError(f"could not connect to https://api.example/?key={KEY}")
    for started in (False, True):
        error = network_error("Example", exc, started=started)
        assert KEY not in error.message
        assert error.kind is ErrorKind.NETWORK
    assert network_error("Example", exc, started=False).message == (
        "Could not reach Example (ConnectError)"
    )
    timeout = network_error("Example", httpx.ReadTimeout("slow"), started=True)
    assert (timeout.kind, timeout.message) == (
        ErrorKind.TIMEOUT,
        "Example stopped answering mid-stream",
    )


@respx.mock
async def test_unreachable_provider_failure_never_contains_the_key() -> None:
    respx.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=httpx.ConnectError(f"boom Authorization: Bearer {KEY}")
    )
    sleep = FakeSleep()

    events = await collect(OpenAI(), chat("gpt-5-mini"), sleep)

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert KEY not in repr(failure)
    assert failure.kind is ErrorKind.NETWORK
    assert failure.message.startswith(
        "Could not reach OpenAI (ConnectError) — retried 3 times over "
    )
    assert len(sleep.delays) == 3


# --------------------------------------------------------------------------- retries


class Scripted(Provider):
    """Plays one script per attempt: events to yield, then maybe an exception to raise."""

    name = "scripted"
    display_name = "Scripted"
    needs_key = False

    def __init__(self, *attempts: tuple[list[Event], BaseException | None]) -> None:
        self.attempts = list(attempts)
        self.calls = 0

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[Event]:
        events, error = self.attempts[min(self.calls, len(self.attempts) - 1)]
        self.calls += 1
        for event in events:
            yield event
        if error is not None:
            raise error


def rate_limited(**headers: str) -> ProviderError:
    return error_for_status("Scripted", 429, "slow down", headers)


async def run(provider: Provider, sleep: FakeSleep, **kwargs: Any) -> list[Event]:
    async with httpx.AsyncClient() as client:
        request = chat("m", key="")
        return [e async for e in provider.stream(client, request, sleep=sleep, **kwargs)]


async def test_429_with_retry_after_ms_is_retried_after_the_hinted_delay() -> None:
    provider = Scripted(
        ([], rate_limited(**{"retry-after-ms": "1250"})),
        ([TextDelta("ok"), Finish("stop")], None),
    )
    sleep = FakeSleep()
    retries: list[tuple[int, float, str]] = []

    async def on_retry(attempt: int, delay: float, error: ProviderError) -> None:
        retries.append((attempt, delay, error.message))

    events = await run(provider, sleep, on_retry=on_retry)

    assert events == [TextDelta("ok"), Finish("stop")]
    assert sleep.delays == [1.25]
    assert retries == [(1, 1.25, "Rate limited by Scripted (429): slow down")]
    assert provider.calls == 2


async def test_a_401_is_not_retried() -> None:
    provider = Scripted(([], error_for_status("Scripted", 401, "bad key")))
    sleep = FakeSleep()

    events = await run(provider, sleep)

    assert events == [
        Failure(ErrorKind.AUTH, "Scripted rejected the API key (401): bad key", True, 401)
    ]
    assert provider.calls == 1
    assert sleep.delays == []


async def test_an_error_after_the_first_token_is_not_retried() -> None:
    provider = Scripted(([TextDelta("partial")], error_for_status("Scripted", 503)))
    sleep = FakeSleep()

    events = await run(provider, sleep)

    assert events == [
        TextDelta("partial"),
        Failure(ErrorKind.UPSTREAM, "Scripted had a server error (503)", False, 503),
    ]
    assert provider.calls == 1


async def test_giving_up_says_how_often_and_how_long_it_retried() -> None:
    provider = Scripted(([], rate_limited(**{"retry-after": "2"})))
    sleep = FakeSleep()

    events = await run(provider, sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by Scripted (429): slow down — retried 3 times over 6 s",
            False,
            429,
        )
    ]
    assert provider.calls == 4
    assert sleep.delays == [2.0, 2.0, 2.0]


async def test_one_retry_is_said_in_the_singular() -> None:
    provider = Scripted(([], rate_limited(**{"retry-after": "1"})))
    provider.retry_policy = RetryPolicy(attempts=2)  # type: ignore[misc]

    events = await run(provider, FakeSleep())

    assert events[-1] == Failure(
        ErrorKind.RATE_LIMIT,
        "Rate limited by Scripted (429): slow down — retried 1 time over 1 s",
        False,
        429,
    )


async def test_transport_error_before_the_answer_is_retried_with_backoff() -> None:
    provider = Scripted(
        ([], httpx.ConnectError("refused")),
        ([TextDelta("hi"), Finish("stop")], None),
    )
    sleep = FakeSleep()

    assert await run(provider, sleep) == [TextDelta("hi"), Finish("stop")]
    assert len(sleep.delays) == 1
    assert 0.4 <= sleep.delays[0] <= 0.6  # base delay 0.5 s with ±20 % jitter


async def test_stream_without_finish_is_reported_as_cut() -> None:
    provider = Scripted(([TextDelta("half")], None))

    events = await run(provider, FakeSleep())

    assert events == [
        TextDelta("half"),
        Failure(ErrorKind.NETWORK, "The connection to Scripted was cut mid-answer", False),
    ]


async def test_empty_stream_is_retried_then_reported() -> None:
    provider = Scripted(([], None))

    sleep = FakeSleep()

    events = await run(provider, sleep)

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.permanent) == (ErrorKind.NETWORK, False)
    assert failure.message == (
        "Scripted closed the stream without an answer"
        f" — retried 3 times over {sum(sleep.delays):.0f} s"
    )
    assert provider.calls == 4


async def test_an_adapter_bug_ends_in_one_failure_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = Scripted(([TextDelta("partial")], KeyError("choices")))
    sleep = FakeSleep()

    with caplog.at_level(logging.ERROR, logger="providers.base"):
        events = await run(provider, sleep)

    assert events == [
        TextDelta("partial"),
        Failure(
            ErrorKind.UPSTREAM,
            "The Scripted answer could not be read (KeyError); this is a bug in the playground",
            permanent=True,
        ),
    ]
    failure = events[-1]
    assert isinstance(failure, Failure)
    assert "Traceback" not in failure.message
    assert "choices" not in failure.message  # the exception's text stays in the log
    assert provider.calls == 1
    assert sleep.delays == []
    # The traceback goes to the log, for whoever fixes the adapter.
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [KeyError]


async def test_an_adapter_bug_before_any_event_is_not_retried() -> None:
    provider = Scripted(([], TypeError("'NoneType' object is not subscriptable")))

    events = await run(provider, FakeSleep())

    assert events == [
        Failure(
            ErrorKind.UPSTREAM,
            "The Scripted answer could not be read (TypeError); this is a bug in the playground",
            permanent=True,
        )
    ]
    assert provider.calls == 1


async def test_missing_key_says_how_to_fix_it() -> None:
    class Keyed(Scripted):
        display_name = "Keyed"
        needs_key = True
        key_env = "KEYED_API_KEY"

    events = await run(Keyed(([Finish("stop")], None)), FakeSleep())

    assert events == [
        Failure(ErrorKind.AUTH, "No API key for Keyed. Set KEYED_API_KEY or add a key.", True)
    ]


async def test_closing_the_stream_closes_the_adapter_generator_at_once() -> None:
    closed: list[bool] = []

    class Endless(Provider):
        name = "endless"
        display_name = "Endless"
        needs_key = False

        async def open_stream(
            self, client: httpx.AsyncClient, request: ChatRequest
        ) -> AsyncIterator[Event]:
            try:
                while True:
                    yield TextDelta("more ")
            finally:
                closed.append(True)

    async with httpx.AsyncClient() as client:
        stream = Endless().stream(client, chat("m", key=""))
        assert await anext(stream) == TextDelta("more ")
        await stream.aclose()
        assert closed == [True]


# --------------------------------------------------------------------------- shared HTTP helpers


def test_redact_blanks_the_key_and_key_shaped_words_only() -> None:
    text = f"bad key {KEY}; also sk-proj-****abcd and AIza{'x' * 35}; skyscrapers are fine"
    assert redact(text, KEY) == (
        "bad key [redacted]; also [redacted] and [redacted]; skyscrapers are fine"
    )


@pytest.mark.parametrize(
    ("words", "kind", "permanent"),
    [
        ("rate_limit_error", ErrorKind.RATE_LIMIT, False),
        ("RESOURCE_EXHAUSTED", ErrorKind.RATE_LIMIT, False),
        ("authentication_error", ErrorKind.AUTH, True),
        ("insufficient_quota", ErrorKind.AUTH, True),
        ("invalid_request_error", ErrorKind.BAD_REQUEST, True),
        ("max_tokens must be below 4000", ErrorKind.UPSTREAM, False),
        ("overloaded_error", ErrorKind.UPSTREAM, False),
        ("DEADLINE_EXCEEDED", ErrorKind.TIMEOUT, False),
    ],
)
def test_classify_in_stream_errors(words: str, kind: ErrorKind, permanent: bool) -> None:
    assert classify(words) == (kind, permanent)
