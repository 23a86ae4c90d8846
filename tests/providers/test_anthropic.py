"""Anthropic's Messages API, replayed from recorded streams."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
import respx

from providers.anthropic import Anthropic
from providers.base import (
    ErrorKind,
    Failure,
    Finish,
    ImagePart,
    Message,
    ParamError,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from tests.providers.replay import (
    KEY,
    FakeSleep,
    Replay,
    chat,
    collect,
    cut_before,
    error_body,
    pieces,
    recorded,
    sent_json,
    sse,
)

URL = "https://api.anthropic.com/v1/messages"

ANSWER = [
    TextDelta("Hello"),
    TextDelta("! How can I"),
    TextDelta(" help?"),
    Usage(input_tokens=25, output_tokens=12),
    Finish("stop"),
]

RATE_LIMITED = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": "Number of request tokens has exceeded your per-minute rate limit",
    },
}


@respx.mock
async def test_answer_with_ping_and_usage() -> None:
    respx.post(URL).mock(return_value=sse(recorded("anthropic", "answer")))

    assert await collect(Anthropic(), chat("claude-sonnet-4-5")) == ANSWER


@respx.mock
async def test_request_has_top_level_system_default_max_tokens_and_stop_sequences() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("anthropic", "answer")))
    request = chat(
        "claude-sonnet-4-5",
        Message("system", "You are terse."),
        Message("user", "Hi"),
        Message("assistant", "Hello."),
        Message(
            "user",
            (
                TextPart("Compare these."),
                ImagePart(data="R0lGODlhAQABAAAAACw=", mime_type="image/gif"),
                ImagePart(url="https://example.com/dog.png"),
                ImagePart(url="data:image/webp;base64,UklGRg=="),
            ),
        ),
        params=Anthropic.clean_params({"temperature": 0.5, "top_k": 40, "stop": ["###"]}),
    )

    await collect(Anthropic(), request)

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent_json(sent) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/gif",
                            "data": "R0lGODlhAQABAAAAACw=",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/dog.png"},
                    },
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/webp",
                            "data": "UklGRg==",
                        },
                    },
                ],
            },
        ],
        "temperature": 0.5,
        "top_k": 40,
        "stop_sequences": ["###"],
        "stream": True,
    }


@respx.mock
async def test_thinking_budget_is_sent_and_max_tokens_leaves_room_for_it() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("anthropic", "thinking")))
    request = chat(
        "claude-sonnet-4-5",
        Message("user", "27 * 453?"),
        params=Anthropic.clean_params({"thinking_budget": "2048"}),
    )

    events = await collect(Anthropic(), request)

    assert sent_json(route.calls.last.request) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 6144,
        "messages": [{"role": "user", "content": "27 * 453?"}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stream": True,
    }
    assert events == [
        ReasoningDelta("27 * 453: 27*400=10800,"),
        ReasoningDelta(" 27*53=1431, total 12231."),
        TextDelta("27 × 453 = 12,231"),
        Usage(input_tokens=48, output_tokens=2048),
        Finish("length"),
    ]


WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)
CLOCK = ToolSpec("get_local_time")


@respx.mock
async def test_thinking_with_tools_yields_reasoning_text_and_both_calls() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("anthropic", "thinking_tool_use")))
    request = chat(
        "claude-sonnet-4-5",
        Message("system", "Use the tools."),
        Message("user", "Weather and time in Lyon?"),
        params=Anthropic.clean_params(
            {"thinking_budget": 2000, "max_tokens": 8000, "top_p": 0.95, "temperature": 1}
        ),
    )

    events = await collect(Anthropic(), dataclasses.replace(request, tools=(WEATHER, CLOCK)))

    assert events == [
        ReasoningDelta("Two lookups: the weather"),
        ReasoningDelta(" and the local time."),
        TextDelta("I'll look both up."),
        ToolCall(
            "toolu_01A7bQ3mXw9Kc2VdLp5RsN8t",
            "get_weather",
            '{"city": "Lyon", "unit": "celsius"}',
        ),
        ToolCall("toolu_01Hs4Yt2Vn6Qe8Wk1Lz3Jp7D", "get_local_time", "{}"),
        Usage(input_tokens=612, output_tokens=187),
        Finish("tool_calls"),
    ]
    # temperature 1 is thinking's only temperature and the default: not sent.
    assert sent_json(route.calls.last.request) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8000,
        "system": "Use the tools.",
        "messages": [{"role": "user", "content": "Weather and time in Lyon?"}],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"enum": ["celsius", "fahrenheit"]},
                    },
                    "required": ["city"],
                },
            },
            {"name": "get_local_time", "input_schema": {"type": "object"}},
        ],
        "top_p": 0.95,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "stream": True,
    }


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        (
            {"thinking_budget": 4096, "max_tokens": 4096},
            "Thinking budget (4096) must be less than Max output tokens (4096); raise Max "
            "output tokens or lower the budget.",
        ),
        (
            {"thinking_budget": 1024, "temperature": 0.3},
            "Temperature cannot be set together with a thinking budget; clear one of them.",
        ),
        (
            {"thinking_budget": 1024, "temperature": 0.3, "top_k": 5},
            "Temperature and Top K cannot be set together with a thinking budget; clear one "
            "of them.",
        ),
        (
            {"thinking_budget": 1024, "top_p": 0.9},
            "With a thinking budget, Top P must be from 0.95 to 1; got 0.9.",
        ),
    ],
)
def test_thinking_budget_refuses_what_the_api_refuses_with_it(
    values: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(ParamError) as error:
        Anthropic.clean_params(values)
    assert str(error.value) == sentence


@respx.mock
async def test_unchecked_thinking_clash_is_refused_before_the_call() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("anthropic", "thinking")))
    request = chat("claude-sonnet-4-5", params={"thinking_budget": 2048, "max_tokens": 1024})

    events = await collect(Anthropic(), request)

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Anthropic was not called: Thinking budget (2048) must be less than Max output "
            "tokens (1024); raise Max output tokens or lower the budget.",
            permanent=True,
        )
    ]
    assert route.call_count == 0


def test_anthropic_declares_tools_images_and_its_extras() -> None:
    assert Anthropic.supports_tools and Anthropic.supports_images
    assert Anthropic.key_env == "ANTHROPIC_API_KEY"
    by_name = {p.name: p for p in Anthropic.params}
    assert list(by_name) == [
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop",
        "thinking_budget",
    ]
    assert (by_name["thinking_budget"].minimum, by_name["top_k"].maximum) == (1024, 500)
    assert all(p.description for p in Anthropic.params)


def test_parameters_follow_anthropic_bounds() -> None:
    with pytest.raises(ParamError, match="Temperature must be a number from 0 to 1; got 1.5."):
        Anthropic.clean_params({"temperature": 1.5})
    with pytest.raises(ParamError, match="Thinking budget must be a whole number from 1024"):
        Anthropic.clean_params({"thinking_budget": 512})
    with pytest.raises(ParamError, match="Unknown parameter: seed."):
        Anthropic.clean_params({"seed": 1})


@respx.mock
async def test_tool_use_arguments_are_assembled() -> None:
    respx.post(URL).mock(return_value=sse(recorded("anthropic", "tool_use")))

    events = await collect(Anthropic(), chat("claude-haiku-4-5"))

    assert events == [
        TextDelta("Let me check."),
        ToolCall(
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", '{"location": "San Francisco, CA"}'
        ),
        Usage(input_tokens=472, output_tokens=89),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_bad_key_is_a_permanent_auth_failure() -> None:
    route = respx.post(URL).mock(
        return_value=error_body(
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
            },
        )
    )

    events = await collect(Anthropic(), chat("claude-sonnet-4-5"))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Anthropic rejected the API key (401): invalid x-api-key",
            permanent=True,
            status=401,
        )
    ]
    assert route.call_count == 1


@respx.mock
async def test_429_honours_retry_after_then_streams() -> None:
    respx.post(URL).mock(
        side_effect=[
            error_body(429, RATE_LIMITED, {"retry-after": "11"}),
            sse(recorded("anthropic", "answer")),
        ]
    )
    sleep = FakeSleep()

    assert await collect(Anthropic(), chat("claude-sonnet-4-5"), sleep) == ANSWER
    assert sleep.delays == [11.0]


@respx.mock
async def test_429_every_time_gives_up_after_three_retries() -> None:
    route = respx.post(URL).mock(return_value=error_body(429, RATE_LIMITED, {"retry-after": "11"}))
    sleep = FakeSleep()

    events = await collect(Anthropic(), chat("claude-sonnet-4-5"), sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by Anthropic (429): Number of request tokens has exceeded your "
            "per-minute rate limit — retried 3 times over 33 s",
            permanent=False,
            status=429,
        )
    ]
    assert route.call_count == 4
    assert sleep.delays == [11.0, 11.0, 11.0]


@respx.mock
async def test_529_is_overloaded_and_retried() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    respx.post(URL).mock(
        side_effect=[error_body(529, overloaded), sse(recorded("anthropic", "answer"))]
    )
    retries: list[str] = []

    async def on_retry(attempt: int, delay: float, error: object) -> None:
        retries.append(str(error))

    async with httpx.AsyncClient() as client:
        events = [
            e
            async for e in Anthropic().stream(
                client, chat("claude-sonnet-4-5"), sleep=FakeSleep(), on_retry=on_retry
            )
        ]

    assert events == ANSWER
    assert retries == ["Anthropic is overloaded (529): Overloaded"]


@respx.mock
async def test_error_event_inside_a_200_stream() -> None:
    route = respx.post(URL).mock(
        side_effect=lambda request: sse(recorded("anthropic", "overloaded"))
    )

    events = await collect(Anthropic(), chat("claude-opus-4-1"))

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.kind is ErrorKind.UPSTREAM
    assert not failure.permanent
    assert failure.message.startswith(
        "Anthropic reported an error (overloaded_error): Overloaded — retried 3 times"
    )
    assert route.call_count == 4


@respx.mock
async def test_error_event_after_text_is_reported_at_once() -> None:
    data = recorded("anthropic", "answer")
    error = (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}\n\n'
    )
    route = respx.post(URL).mock(
        return_value=sse(data[: data.index(b"event: content_block_stop")] + error)
    )

    events = await collect(Anthropic(), chat("claude-sonnet-4-5"))

    assert events == [
        TextDelta("Hello"),
        TextDelta("! How can I"),
        TextDelta(" help?"),
        Failure(
            ErrorKind.RATE_LIMIT,
            "Anthropic reported an error (rate_limit_error): Slow down",
            permanent=False,
        ),
    ]
    assert route.call_count == 1


@respx.mock
async def test_malformed_line_is_skipped_and_the_rest_parsed() -> None:
    respx.post(URL).mock(return_value=sse(recorded("anthropic", "malformed")))

    events = await collect(Anthropic(), chat("claude-haiku-4-5"))

    assert events == [
        TextDelta("Fine"),
        TextDelta(", thanks."),
        Usage(input_tokens=7, output_tokens=5),
        Finish("stop"),
    ]


@respx.mock
async def test_connection_cut_mid_answer() -> None:
    data = recorded("anthropic", "answer")
    respx.post(URL).mock(return_value=sse(cut_before(data, b'" help?"')))

    events = await collect(Anthropic(), chat("claude-sonnet-4-5"))

    assert events == [
        TextDelta("Hello"),
        TextDelta("! How can I"),
        Failure(ErrorKind.NETWORK, "The connection to Anthropic was cut mid-answer", False),
    ]


@respx.mock
async def test_connection_cut_inside_tool_arguments_yields_no_half_call() -> None:
    data = recorded("anthropic", "thinking_tool_use")
    respx.post(URL).mock(return_value=sse(cut_before(data, b'on\\", \\"unit')))

    events = await collect(Anthropic(), chat("claude-sonnet-4-5"))

    assert events == [
        ReasoningDelta("Two lookups: the weather"),
        ReasoningDelta(" and the local time."),
        TextDelta("I'll look both up."),
        Failure(ErrorKind.NETWORK, "The connection to Anthropic was cut mid-answer", False),
    ]


@respx.mock
async def test_stream_closed_before_message_stop_and_without_stop_reason_is_cut() -> None:
    data = recorded("anthropic", "answer")
    respx.post(URL).mock(return_value=sse(data[: data.index(b"event: message_delta")]))

    events = await collect(Anthropic(), chat("claude-sonnet-4-5"))

    assert events[-1] == Failure(
        ErrorKind.NETWORK, "The connection to Anthropic was cut mid-answer", False
    )


@respx.mock
async def test_closing_early_closes_the_http_response() -> None:
    body = Replay(pieces(recorded("anthropic", "answer"), size=16))
    respx.post(URL).mock(return_value=sse(body))

    async with httpx.AsyncClient() as client:
        stream = Anthropic().stream(client, chat("claude-sonnet-4-5"))
        assert await anext(stream) == TextDelta("Hello")
        await stream.aclose()

        assert body.closed
    assert body.read < len(body.chunks)


@respx.mock
async def test_unexpected_json_shapes_are_ignored_not_crashed_on() -> None:
    odd = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":[0],'
        b'"delta":"text"}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","content_block":3}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":null,"usage":"many"}\n\n'
        b"event: future_event\ndata: [1, 2]\n\n"
    )
    respx.post(URL).mock(return_value=sse(odd + recorded("anthropic", "answer")))

    assert await collect(Anthropic(), chat("claude-sonnet-4-5")) == ANSWER
