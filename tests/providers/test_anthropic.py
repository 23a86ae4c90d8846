"""What is Anthropic's own in its Messages API: the request bytes (top-level system, default
max_tokens, thinking budget), parameter rules, 529 overload, odd shapes. The scenarios every
adapter shares are in test_contract.py."""

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
    chat,
    collect,
    cut_before,
    error_body,
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
