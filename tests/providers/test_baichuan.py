"""What is Baichuan's own: the exact request, its {code, msg} error body, no images, parameter
bounds. The scenarios every adapter shares are in test_contract.py."""

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
    ToolSpec,
    Usage,
)
from tests.providers.replay import (
    KEY,
    chat,
    collect,
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
async def test_error_body_with_code_and_msg_is_read() -> None:
    respx.post(URL).mock(return_value=error_body(401, {"code": 10002, "msg": "api key 无效"}))

    events = await collect(Baichuan(), chat("Baichuan4"))

    assert events == [
        Failure(ErrorKind.AUTH, "Baichuan rejected the API key (401): api key 无效", True, 401)
    ]


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
