"""Baichuan (api.baichuan-ai.com), replayed from recorded streams."""

from __future__ import annotations

import dataclasses

import pytest
import respx

from providers.baichuan import Baichuan
from providers.base import (
    ErrorKind,
    Failure,
    Finish,
    ImagePart,
    Message,
    ParamError,
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

URL = "https://api.baichuan-ai.com/v1/chat/completions"

ANSWER = [
    TextDelta("您好"),
    TextDelta("！有什么"),
    TextDelta("可以帮您？"),
    Usage(input_tokens=5, output_tokens=9, reasoning_tokens=None),
    Finish("stop"),
]

RATE_LIMITED = {
    "error": {
        "code": "rate_limit_exceeded",
        "message": "Rate limit reached for requests",
        "type": "rate_limit_error",
        "param": None,
    }
}


@respx.mock
async def test_answer_and_the_exact_request() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("baichuan", "answer")))
    weather = ToolSpec(
        "get_current_weather",
        "Current weather.",
        {"type": "object", "properties": {"location": {"type": "string"}}},
    )
    request = chat(
        "Baichuan4",
        Message("system", "你是百川大模型。"),
        Message("user", "你好"),
        params=Baichuan.clean_params(
            {
                "temperature": 0.3,
                "top_p": 0.85,
                "top_k": 5,
                "max_tokens": 2048,
                "with_search_enhance": "on",
            }
        ),
    )
    request = dataclasses.replace(request, tools=(weather,))

    events = await collect(Baichuan(), request)

    assert events == ANSWER
    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(sent) == {
        "model": "Baichuan4",
        "messages": [
            {"role": "system", "content": "你是百川大模型。"},
            {"role": "user", "content": "你好"},
        ],
        "stream": True,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_current_weather",
                    "description": "Current weather.",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                    },
                },
            }
        ],
        "temperature": 0.3,
        "top_p": 0.85,
        "top_k": 5,
        "max_tokens": 2048,
        "with_search_enhance": True,
    }


@respx.mock
async def test_tool_call_arguments_are_assembled() -> None:
    respx.post(URL).mock(return_value=sse(recorded("baichuan", "tool_call")))

    events = await collect(Baichuan(), chat("Baichuan3-Turbo"))

    assert events == [
        ToolCall("3951017OF8doB0A", "get_current_weather", '{"location": "上海"}'),
        Usage(input_tokens=96, output_tokens=17, reasoning_tokens=None),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_bad_key_is_a_permanent_auth_failure() -> None:
    route = respx.post(URL).mock(
        return_value=error_body(
            401,
            {
                "error": {
                    "code": "invalid_api_key",
                    "message": f"Incorrect API key provided: {KEY}",
                    "type": "invalid_request_error",
                    "param": None,
                }
            },
        )
    )

    events = await collect(Baichuan(), chat("Baichuan4"))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Baichuan rejected the API key (401): Incorrect API key provided: [redacted]",
            permanent=True,
            status=401,
        )
    ]
    assert route.call_count == 1


@respx.mock
async def test_error_body_with_code_and_msg_is_read() -> None:
    respx.post(URL).mock(return_value=error_body(401, {"code": 10002, "msg": "api key 无效"}))

    events = await collect(Baichuan(), chat("Baichuan4"))

    assert events == [
        Failure(ErrorKind.AUTH, "Baichuan rejected the API key (401): api key 无效", True, 401)
    ]


@respx.mock
async def test_429_honours_retry_after_then_streams() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            error_body(429, RATE_LIMITED, {"retry-after": "7"}),
            sse(recorded("baichuan", "answer")),
        ]
    )
    sleep = FakeSleep()

    assert await collect(Baichuan(), chat("Baichuan4"), sleep) == ANSWER
    assert sleep.delays == [7.0]
    assert route.call_count == 2


@respx.mock
async def test_429_every_time_gives_up_after_three_retries() -> None:
    route = respx.post(URL).mock(return_value=error_body(429, RATE_LIMITED, {"retry-after": "7"}))
    sleep = FakeSleep()

    events = await collect(Baichuan(), chat("Baichuan4"), sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by Baichuan (429): Rate limit reached for requests "
            "— retried 3 times over 21 s",
            permanent=False,
            status=429,
        )
    ]
    assert route.call_count == 4
    assert sleep.delays == [7.0, 7.0, 7.0]


@respx.mock
async def test_error_inside_the_stream_after_text() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("baichuan", "error_in_stream")))

    events = await collect(Baichuan(), chat("Baichuan4"))

    assert events == [
        TextDelta("从前"),
        Failure(
            ErrorKind.UPSTREAM,
            "Baichuan reported an error (server_error): Internal server error, please retry later.",
            permanent=False,
        ),
    ]
    assert route.call_count == 1


@respx.mock
async def test_malformed_line_is_skipped() -> None:
    respx.post(URL).mock(return_value=sse(recorded("baichuan", "malformed")))

    events = await collect(Baichuan(), chat("Baichuan4-Turbo"))

    assert events == [
        TextDelta("一"),
        TextDelta("三"),
        Usage(input_tokens=4, output_tokens=3, reasoning_tokens=None),
        Finish("length"),
    ]


@respx.mock
async def test_connection_cut_mid_answer_keeps_the_text() -> None:
    data = recorded("baichuan", "answer")
    route = respx.post(URL).mock(return_value=sse(cut_before(data, "可以帮您".encode())))

    events = await collect(Baichuan(), chat("Baichuan4"))

    assert events == [
        TextDelta("您好"),
        TextDelta("！有什么"),
        Failure(ErrorKind.NETWORK, "The connection to Baichuan was cut mid-answer", False),
    ]
    assert route.call_count == 1


@respx.mock
async def test_images_are_refused_before_any_call() -> None:
    request = chat("Baichuan4", Message("user", (TextPart("?"), ImagePart(data="iVBORw0KGgo="))))

    events = await collect(Baichuan(), request)

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Baichuan cannot take images; remove them from the turn.",
            permanent=True,
        )
    ]
    assert not respx.calls


def test_parameters_follow_baichuan_bounds() -> None:
    with pytest.raises(ParamError, match="Temperature must be a number from 0 to 1; got 1.2."):
        Baichuan.clean_params({"temperature": 1.2})
    with pytest.raises(ParamError, match="Top K must be a whole number from 0 to 20; got 21."):
        Baichuan.clean_params({"top_k": 21})
    with pytest.raises(ParamError, match="Top P must be a number from 0 to 0.99; got 1."):
        Baichuan.clean_params({"top_p": 1})
    with pytest.raises(ParamError, match="Unknown parameter: seed."):
        Baichuan.clean_params({"seed": 1})
    with pytest.raises(ParamError, match="Unknown parameter: stop."):
        Baichuan.clean_params({"stop": ["x"]})
