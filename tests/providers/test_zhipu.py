"""Zhipu GLM (open.bigmodel.cn), replayed from recorded streams; the JWT is recomputed here
by hand from Zhipu's recipe (PROVIDERS.md §7)."""

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
    ToolCall,
    ToolSpec,
    Usage,
)
from providers.zhipu import Zhipu
from tests.providers.replay import (
    FakeSleep,
    chat,
    collect,
    cut_before,
    error_body,
    head,
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
async def test_tool_call_in_one_chunk() -> None:
    respx.post(URL).mock(return_value=sse(recorded("zhipu", "tool_call")))

    events = await collect(zhipu(), chat("glm-4-plus", key=KEY))

    assert events == [
        ToolCall("call_-8963210461946870281", "get_weather", '{"city": "北京"}'),
        Usage(input_tokens=178, output_tokens=12, reasoning_tokens=None),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_bad_key_is_a_permanent_auth_failure() -> None:
    route = respx.post(URL).mock(
        return_value=error_body(
            401,
            {
                "error": {
                    "code": "1002",
                    "message": "Authorization Token非法，请确认Token正确传递。",
                }
            },
        )
    )

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Zhipu GLM rejected the API key (401, 1002): "
            "Authorization Token非法，请确认Token正确传递。",
            permanent=True,
            status=401,
        )
    ]
    assert route.call_count == 1


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


@respx.mock
async def test_concurrency_limit_honours_retry_after_then_gives_up() -> None:
    busy = {"error": {"code": "1302", "message": "您当前使用该API的并发数过高，请降低并发。"}}
    route = respx.post(URL).mock(return_value=error_body(429, busy, {"retry-after": "4"}))
    sleep = FakeSleep()

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY), sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by Zhipu GLM for running too many at once (429, 1302): "
            "您当前使用该API的并发数过高，请降低并发。 — retried 3 times over 12 s",
            permanent=False,
            status=429,
        )
    ]
    assert route.call_count == 4
    assert sleep.delays == [4.0, 4.0, 4.0]


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
async def test_content_blocked_mid_stream_keeps_the_text_before() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("zhipu", "error_in_stream")))

    events = await collect(zhipu(), chat("glm-4-plus", key=KEY))

    assert events == [
        TextDelta("这个故事"),
        Failure(
            ErrorKind.CONTENT_FILTER,
            "Zhipu GLM blocked the content as unsafe (1301): 系统检测到输入或生成内容可能包含"
            "不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。",
            permanent=True,
        ),
    ]
    assert route.call_count == 1


@respx.mock
async def test_rate_limit_inside_a_200_stream_is_retried() -> None:
    route = respx.post(URL).mock(
        side_effect=[sse(recorded("zhipu", "busy_in_stream")), sse(recorded("zhipu", "answer"))]
    )
    sleep = FakeSleep()

    assert await collect(zhipu(), chat("glm-4-flash", key=KEY), sleep) == ANSWER
    assert route.call_count == 2
    assert len(sleep.delays) == 1


@respx.mock
async def test_sensitive_finish_is_a_content_filter_finish() -> None:
    respx.post(URL).mock(return_value=sse(recorded("zhipu", "sensitive")))

    events = await collect(zhipu(), chat("glm-4-air", key=KEY))

    assert events == [
        TextDelta("关于这个"),
        Usage(input_tokens=20, output_tokens=3, reasoning_tokens=None),
        Finish("content_filter"),
    ]


@respx.mock
async def test_network_error_finish_is_a_failure_after_the_text() -> None:
    respx.post(URL).mock(return_value=sse(recorded("zhipu", "network_error")))

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY))

    assert events == [
        TextDelta("Let me"),
        Failure(ErrorKind.UPSTREAM, "Zhipu GLM broke off the answer (network_error)", False),
    ]


@respx.mock
async def test_malformed_line_is_skipped() -> None:
    respx.post(URL).mock(return_value=sse(recorded("zhipu", "malformed")))

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY))

    assert events == [
        TextDelta("早上"),
        TextDelta("好"),
        Usage(input_tokens=6, output_tokens=2, reasoning_tokens=None),
        Finish("stop"),
    ]


@respx.mock
async def test_connection_cut_mid_answer_keeps_the_text() -> None:
    data = recorded("zhipu", "answer")
    route = respx.post(URL).mock(return_value=sse(cut_before(data, "智谱清言".encode())))

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY))

    assert events == [
        TextDelta("你好"),
        TextDelta("！我是"),
        Failure(ErrorKind.NETWORK, "The connection to Zhipu GLM was cut mid-answer", False),
    ]
    assert route.call_count == 1


@respx.mock
async def test_stream_ending_without_finish_or_done_is_cut() -> None:
    data = recorded("zhipu", "answer")
    respx.post(URL).mock(return_value=sse(head(data, b'"finish_reason"')))

    events = await collect(zhipu(), chat("glm-4-flash", key=KEY))

    assert events[-1] == Failure(
        ErrorKind.NETWORK, "The connection to Zhipu GLM was cut mid-answer", False
    )


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
