"""What is Zhipu GLM's own: the JWT (recomputed here by hand from Zhipu's recipe, PROVIDERS.md
§7), the request bytes, its error codes and finish reasons. The scenarios every adapter
shares are in test_contract.py."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json

import pytest
import respx

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
    ToolSpec,
    Usage,
    VideoPart,
)
from providers.zhipu import Zhipu
from tests.providers.replay import (
    chat,
    collect,
    error_body,
    recorded,
    sent_json,
    sse,
)

URL = "https://open.bigmodel.cn/api/paas/v4/chat/completions"
KEY_ID = "4c5d2f8a9b1e4f7a8c3d6e9f0a1b2c3d"
SECRET = "Xy7kP2mQ9rS4tV6w"
KEY = f"{KEY_ID}.{SECRET}"
NOW = 1754382622.5  # seconds; 1754382622500 ms


def clock() -> float:
    return NOW


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def expected_token() -> str:
    """HS256 over base64url(header) + "." + base64url(claims), times in milliseconds."""
    header = b64url(b'{"alg":"HS256","sign_type":"SIGN"}')
    claims = b64url(
        b'{"api_key":"4c5d2f8a9b1e4f7a8c3d6e9f0a1b2c3d","exp":1754382832500,'
        b'"timestamp":1754382622500}'
    )
    signature = hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256)
    return f"{header}.{claims}.{b64url(signature.digest())}"


ANSWER = [
    TextDelta("你好"),
    TextDelta("！我是"),
    TextDelta("智谱清言。"),
    Usage(input_tokens=9, output_tokens=7, reasoning_tokens=None),
    Finish("stop"),
]


def zhipu() -> Zhipu:
    return Zhipu(clock=clock)


@respx.mock
async def test_answer_and_the_exact_request_with_a_signed_token() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("zhipu", "answer")))
    weather = ToolSpec("get_weather", "Weather now.", {"type": "object", "properties": {}})
    request = chat(
        "glm-4v-plus",
        Message("system", "你是一个乐于助人的助手。"),
        Message(
            "user",
            (
                TextPart("这是什么？"),
                ImagePart(url="https://example.com/cat.png"),
                ImagePart(data="iVBORw0KGgo="),
                ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
            ),
        ),
        key=KEY,
        params=Zhipu.clean_params(
            {
                "temperature": 0.6,
                "top_p": 0.9,
                "max_tokens": 1024,
                "stop": ["Observation:"],
                "do_sample": "off",
                "thinking": "off",
                "seed": 42,
            }
        ),
    )
    request = dataclasses.replace(request, tools=(weather,))

    events = await collect(zhipu(), request)

    assert events == ANSWER
    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["authorization"] == f"Bearer {expected_token()}"
    assert sent_json(sent) == {
        "model": "glm-4v-plus",
        "messages": [
            {"role": "system", "content": "你是一个乐于助人的助手。"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "这是什么？"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    # Inline images go as bare base64, as in Zhipu's examples.
                    {"type": "image_url", "image_url": {"url": "iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "/9j/4AAQ"}},
                ],
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather now.",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
        "temperature": 0.6,
        "top_p": 0.9,
        "max_tokens": 1024,
        "stop": ["Observation:"],
        "do_sample": False,
        "thinking": {"type": "disabled"},
        "seed": 42,
    }


@respx.mock
async def test_a_video_beside_images_is_refused_before_the_call() -> None:
    # GLM-4V takes a video or images in a message, never both (its API reference); frames
    # are images here, so a video of frames beside a video by address is refused too.
    route = respx.post(URL).mock(return_value=sse(recorded("zhipu", "answer")))
    clip = VideoPart(url="https://media.example.com/clip.mp4")
    frames = VideoPart(frames=(ImagePart(data="iVBORw0KGgo="),))
    for beside in (ImagePart(url="https://example.com/cat.png"), frames):
        media = Message("user", (clip, beside, TextPart("What happens?")))

        events = await collect(zhipu(), chat("glm-4v-plus", media, key=KEY))

        assert events == [
            Failure(
                ErrorKind.BAD_REQUEST,
                "Zhipu GLM cannot take a video and images in one message; send the images "
                "in a turn of their own.",
                permanent=True,
            )
        ]
    assert route.call_count == 0


def test_token_claims_are_in_milliseconds_and_signed_with_the_secret() -> None:
    token = zhipu().headers(chat("glm-4", key=KEY))["Authorization"].removeprefix("Bearer ")
    header, claims, _ = token.split(".")

    def decode(part: str) -> object:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    assert decode(header) == {"alg": "HS256", "sign_type": "SIGN"}
    assert decode(claims) == {
        "api_key": KEY_ID,
        "exp": 1754382622500 + 210_000,
        "timestamp": 1754382622500,
    }
    assert token == expected_token()


@respx.mock
async def test_a_key_without_a_dot_is_sent_as_it_is() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("zhipu", "answer")))

    await collect(zhipu(), chat("glm-4-flash", key="plain-zhipu-key-without-dot"))

    assert route.calls.last.request.headers["authorization"] == "Bearer plain-zhipu-key-without-dot"


@respx.mock
async def test_reasoning_content_of_glm_4_5() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("zhipu", "reasoning")))
    request = chat("glm-4.5", key=KEY, params=Zhipu.clean_params({"thinking": True}))

    events = await collect(zhipu(), request)

    assert events == [
        ReasoningDelta("用户问"),
        ReasoningDelta("1+1，答案是2。"),
        TextDelta("\n1+1=2"),
        Usage(input_tokens=12, output_tokens=15, reasoning_tokens=9),
        Finish("stop"),
    ]
    assert sent_json(route.calls.last.request)["thinking"] == {"type": "enabled"}


@respx.mock
async def test_error_messages_never_hold_the_secret_or_the_token() -> None:
    echoed = f"token {expected_token()} for secret {SECRET} is not valid"
    respx.post(URL).mock(
        side_effect=[
            error_body(401, {"error": {"code": "1004", "message": echoed}}),
            error_body(401, {"error": {"code": "9999", "message": echoed}}),
        ]
    )

    for _ in range(2):
        (failure,) = await collect(zhipu(), chat("glm-4-flash", key=KEY))

        assert isinstance(failure, Failure)
        assert failure.kind is ErrorKind.AUTH
        assert failure.message.endswith("token [redacted] for secret [redacted] is not valid")
        assert SECRET not in failure.message


@pytest.mark.parametrize(
    ("status", "code", "words", "kind", "sentence"),
    [
        (
            429,
            "1113",
            "您的账户已欠费，请充值后重试。",
            ErrorKind.AUTH,
            "Zhipu GLM refused the request: the account is in arrears",
        ),
        (
            400,
            "1261",
            "Prompt 超长",
            ErrorKind.BAD_REQUEST,
            "Zhipu GLM says the prompt is too long",
        ),
        (
            400,
            "1301",
            "系统检测到输入或生成内容可能包含不安全或敏感内容。",
            ErrorKind.CONTENT_FILTER,
            "Zhipu GLM blocked the content as unsafe",
        ),
        (
            429,
            "1304",
            "该 API 已达今日调用次数限额。",
            ErrorKind.RATE_LIMIT,
            "Zhipu GLM's daily call limit is reached",
        ),
        (
            400,
            "1211",
            "模型不存在，请检查模型代码。",
            ErrorKind.BAD_REQUEST,
            "Zhipu GLM does not know this model",
        ),
    ],
)
@respx.mock
async def test_permanent_error_codes_are_not_retried(
    status: int, code: str, words: str, kind: ErrorKind, sentence: str
) -> None:
    route = respx.post(URL).mock(
        return_value=error_body(status, {"error": {"code": code, "message": words}})
    )

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY))

    assert events == [Failure(kind, f"{sentence} ({status}, {code}): {words}", True, status)]
    assert route.call_count == 1


@respx.mock
async def test_sensitive_finish_is_a_content_filter_finish() -> None:
    respx.post(URL).mock(return_value=sse(recorded("zhipu", "sensitive")))

    events = await collect(zhipu(), chat("glm-4-air", key=KEY))

    assert events == [
        TextDelta("关于这个"),
        Usage(input_tokens=20, output_tokens=3, reasoning_tokens=None),
        Finish("content_filter"),
    ]


def test_parameters_follow_zhipu_bounds() -> None:
    with pytest.raises(ParamError, match="Temperature must be a number from 0 to 1; got 1.5."):
        Zhipu.clean_params({"temperature": 1.5})
    with pytest.raises(ParamError, match="Top P must be a number from 0.01 to 1; got 0."):
        Zhipu.clean_params({"top_p": 0})
    with pytest.raises(ParamError, match="Stop sequences takes at most 1 sequences."):
        Zhipu.clean_params({"stop": ["a", "b"]})
    with pytest.raises(ParamError, match="Unknown parameter: presence_penalty."):
        Zhipu.clean_params({"presence_penalty": 1})
    assert Zhipu.clean_params({"do_sample": "false"}) == {"do_sample": False}
    assert Zhipu.key_env == "ZHIPUAI_API_KEY"
