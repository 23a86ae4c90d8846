"""What is Tencent Hunyuan's own: the native API 3.0 signed with TC3-HMAC-SHA256 (recomputed
here by hand from Tencent's published algorithm), its error codes in 200 bodies and its
request bytes, and the OpenAI-compatible endpoint's request. The scenarios every adapter
shares are in test_contract.py."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
import respx

from providers.base import (
    ChatRequest,
    Credentials,
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
from providers.hunyuan import Hunyuan, HunyuanCompatible
from tests.providers.replay import (
    FakeSleep,
    chat,
    collect,
    error_body,
    recorded,
    sent_json,
    sse,
)

URL = "https://hunyuan.tencentcloudapi.com/"
SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"
SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA"
NOW = 1754383600.7  # 2025-08-05 08:46:40 UTC


def clock() -> float:
    return NOW


def hunyuan() -> Hunyuan:
    return Hunyuan(clock=clock)


def native_chat(
    *messages: Message,
    model: str = "hunyuan-turbos-latest",
    region: str = "",
    params: dict[str, Any] | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> ChatRequest:
    extra = {"secret_key": SECRET_KEY, **({"region": region} if region else {})}
    return ChatRequest(
        model=model,
        messages=messages or (Message("user", "你好"),),
        params=dict(params or {}),
        credentials=Credentials(api_key=SECRET_ID, extra=extra),
        tools=tools,
    )


def expected_authorization(
    payload: bytes, timestamp: int = 1754383600, date: str = "2025-08-05"
) -> str:
    """TC3-HMAC-SHA256 written out step by step, as Tencent publishes it."""
    sha256 = hashlib.sha256
    canonical_request = (
        "POST\n"
        "/\n"
        "\n"
        "content-type:application/json\n"
        "host:hunyuan.tencentcloudapi.com\n"
        "\n"
        "content-type;host\n" + sha256(payload).hexdigest()
    )
    string_to_sign = (
        "TC3-HMAC-SHA256\n"
        f"{timestamp}\n"
        f"{date}/hunyuan/tc3_request\n" + sha256(canonical_request.encode()).hexdigest()
    )
    secret_date = hmac.new(("TC3" + SECRET_KEY).encode(), date.encode(), sha256).digest()
    secret_service = hmac.new(secret_date, b"hunyuan", sha256).digest()
    secret_signing = hmac.new(secret_service, b"tc3_request", sha256).digest()
    signature = hmac.new(secret_signing, string_to_sign.encode(), sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/hunyuan/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


ANSWER = [
    TextDelta("你好"),
    TextDelta("！我是腾讯混元，"),
    TextDelta("很高兴见到你。"),
    Usage(input_tokens=4, output_tokens=12),
    Finish("stop"),
]

WEATHER = ToolSpec(
    "get_weather",
    "查询城市天气。",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


# --------------------------------------------------------------------------- native


@respx.mock
async def test_native_answer_and_the_exact_signed_request() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("hunyuan", "native_answer")))
    request = native_chat(
        Message("system", "你是腾讯混元。"),
        Message("user", "你好"),
        Message("assistant", "你好！"),
        Message("user", "介绍一下你自己"),
        region="ap-guangzhou",
        params=Hunyuan.clean_params(
            {
                "temperature": 0.6,
                "top_p": 0.9,
                "seed": 42,
                "stop": ["。"],
                "enable_enhancement": "off",
            }
        ),
        tools=(WEATHER,),
    )

    events = await collect(hunyuan(), request)

    assert events == ANSWER
    sent = route.calls.last.request
    assert str(sent.url) == URL
    expected_body = {
        "Model": "hunyuan-turbos-latest",
        "Messages": [
            {"Role": "system", "Content": "你是腾讯混元。"},
            {"Role": "user", "Content": "你好"},
            {"Role": "assistant", "Content": "你好！"},
            {"Role": "user", "Content": "介绍一下你自己"},
        ],
        "Stream": True,
        "Temperature": 0.6,
        "TopP": 0.9,
        "Seed": 42,
        "EnableEnhancement": False,
        "Stop": ["。"],
        "Tools": [
            {
                "Type": "function",
                "Function": {
                    "Name": "get_weather",
                    "Description": "查询城市天气。",
                    "Parameters": '{"type": "object", "properties": {"city": {"type": '
                    '"string"}}, "required": ["city"]}',
                },
            }
        ],
    }
    assert sent_json(sent) == expected_body
    assert sent.content == json.dumps(
        expected_body, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    assert sent.headers["authorization"] == expected_authorization(sent.content)
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["host"] == "hunyuan.tencentcloudapi.com"
    assert sent.headers["x-tc-action"] == "ChatCompletions"
    assert sent.headers["x-tc-version"] == "2023-09-01"
    assert sent.headers["x-tc-timestamp"] == "1754383600"
    assert sent.headers["x-tc-region"] == "ap-guangzhou"


@respx.mock
async def test_native_signature_uses_the_utc_date_of_the_timestamp() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("hunyuan", "native_answer")))

    await collect(Hunyuan(clock=lambda: 1754438400.0), native_chat())  # 00:00:00 UTC

    sent = route.calls.last.request
    assert sent.headers["authorization"] == expected_authorization(
        sent.content, timestamp=1754438400, date="2025-08-06"
    )
    assert "x-tc-region" not in sent.headers


@respx.mock
async def test_native_images_go_as_contents() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("hunyuan", "native_answer")))
    request = native_chat(
        Message(
            "user",
            (
                TextPart("图里有什么？"),
                ImagePart(url="https://example.com/cat.png"),
                ImagePart(data="iVBORw0KGgo=", mime_type="image/png"),
            ),
        ),
        model="hunyuan-vision",
    )

    await collect(hunyuan(), request)

    assert sent_json(route.calls.last.request)["Messages"] == [
        {
            "Role": "user",
            "Contents": [
                {"Type": "text", "Text": "图里有什么？"},
                {"Type": "image_url", "ImageUrl": {"Url": "https://example.com/cat.png"}},
                {"Type": "image_url", "ImageUrl": {"Url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]


@respx.mock
async def test_native_moderation_stop_is_a_content_filter_finish() -> None:
    respx.post(URL).mock(return_value=sse(recorded("hunyuan", "native_sensitive")))

    events = await collect(hunyuan(), native_chat())

    assert events == [
        TextDelta("关于这个问题，"),
        Usage(input_tokens=14, output_tokens=5),
        Finish("content_filter"),
    ]


def api_error(code: str, message: str) -> dict[str, Any]:
    return {
        "Response": {
            "Error": {"Code": code, "Message": message},
            "RequestId": "3c140219-cfe9-470e-b241-907877d6fb03",
        }
    }


@respx.mock
async def test_native_signature_echoed_in_an_error_is_redacted() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        signature = request.headers["authorization"].rpartition("Signature=")[2]
        message = f"The provided credentials could not be validated ({signature})."
        return error_body(200, api_error("AuthFailure.SignatureFailure", message))

    respx.post(URL).mock(side_effect=refuse)

    events = await collect(hunyuan(), native_chat())

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Tencent Hunyuan rejected the SecretId or SecretKey (AuthFailure.SignatureFailure): "
            "The provided credentials could not be validated ([redacted]).",
            permanent=True,
        )
    ]


@respx.mock
async def test_native_expired_signature_points_at_the_clock() -> None:
    respx.post(URL).mock(
        return_value=error_body(
            200,
            api_error(
                "AuthFailure.SignatureExpire",
                "Signature expired. Timestamp 1754383600 is past the allowed window.",
            ),
        )
    )

    events = await collect(hunyuan(), native_chat())

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Tencent Hunyuan refused the signature as expired (is this machine's clock right?) "
            "(AuthFailure.SignatureExpire): Signature expired. Timestamp 1754383600 is past the "
            "allowed window.",
            permanent=True,
        )
    ]


@pytest.mark.parametrize(
    ("code", "kind", "permanent", "words"),
    [
        ("RequestLimitExceeded", ErrorKind.RATE_LIMIT, False, "Rate limited by Tencent Hunyuan"),
        ("LimitExceeded", ErrorKind.RATE_LIMIT, False, "Rate limited by Tencent Hunyuan"),
        (
            "FailedOperation.EngineServerLimitExceeded",
            ErrorKind.RATE_LIMIT,
            False,
            "Rate limited by Tencent Hunyuan",
        ),
        (
            "InvalidParameterValue.Model",
            ErrorKind.BAD_REQUEST,
            True,
            "Tencent Hunyuan does not know this model",
        ),
        (
            "OperationDenied.TextIllegalDetected",
            ErrorKind.CONTENT_FILTER,
            True,
            "Tencent Hunyuan blocked the text",
        ),
        (
            "FailedOperation.ServiceNotActivated",
            ErrorKind.AUTH,
            True,
            "Tencent Hunyuan refused the account: billing or service problem",
        ),
        (
            "ResourceUnavailable.InArrears",
            ErrorKind.AUTH,
            True,
            "Tencent Hunyuan refused the account: billing or service problem",
        ),
        ("InternalError", ErrorKind.UPSTREAM, False, "Tencent Hunyuan had an internal error"),
    ],
)
@respx.mock
async def test_native_error_codes(code: str, kind: ErrorKind, permanent: bool, words: str) -> None:
    route = respx.post(URL).mock(return_value=error_body(200, api_error(code, "详情")))

    events = await collect(hunyuan(), native_chat())

    failure = events[-1]
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.permanent) == (kind, permanent)
    assert failure.message.split(" — retried")[0] == f"{words} ({code}): 详情"
    assert route.call_count == (1 if permanent else 4)


@respx.mock
async def test_native_rate_limit_in_a_200_body_is_retried_then_streams() -> None:
    limited = api_error("FailedOperation.EngineServerLimitExceeded", "引擎层请求超过限额")
    respx.post(URL).mock(
        side_effect=[error_body(200, limited), sse(recorded("hunyuan", "native_answer"))]
    )
    sleep = FakeSleep()

    assert await collect(hunyuan(), native_chat(), sleep) == ANSWER
    assert len(sleep.delays) == 1


@respx.mock
async def test_native_gateway_error_without_a_tencent_body() -> None:
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(502, text="Bad Gateway"),
            sse(recorded("hunyuan", "native_answer")),
        ]
    )

    assert await collect(hunyuan(), native_chat()) == ANSWER


async def test_native_missing_secret_key_is_named() -> None:
    request = dataclasses.replace(native_chat(), credentials=Credentials(api_key=SECRET_ID))

    events = await collect(hunyuan(), request)

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Tencent Hunyuan needs a SecretId and a SecretKey: set TENCENTCLOUD_SECRET_KEY.",
            permanent=True,
        )
    ]


def test_native_declares_its_credentials_and_parameters() -> None:
    assert Hunyuan.key_env == "TENCENTCLOUD_SECRET_ID"
    assert Hunyuan.extra_credentials == {
        "secret_key": "TENCENTCLOUD_SECRET_KEY",
        "region": "TENCENTCLOUD_REGION",
    }
    assert Hunyuan.optional_credentials == {"region"}
    assert Hunyuan.supports_tools and Hunyuan.supports_images
    assert [p.name for p in Hunyuan.params] == [
        "temperature",
        "top_p",
        "seed",
        "stop",
        "enable_enhancement",
    ]
    assert all(p.description for p in Hunyuan.params)
    with pytest.raises(ParamError, match="Seed must be a whole number from 1 to 10000"):
        Hunyuan.clean_params({"seed": 0})
    with pytest.raises(ParamError, match="Unknown parameter: max_tokens."):
        Hunyuan.clean_params({"max_tokens": 100})


# --------------------------------------------------------------------------- compatible

COMPAT_URL = "https://api.hunyuan.cloud.tencent.com/v1/chat/completions"
COMPAT_KEY = "sk-BbNefD7FObbp3PE6R2supfJbBUoEyIn5RLwMBsrLvuKigQyi"

COMPAT_ANSWER = [
    TextDelta("你好"),
    TextDelta("！有什么可以帮你？"),
    Usage(input_tokens=3, output_tokens=8),
    Finish("stop"),
]


def compat_chat(**kwargs: Any) -> ChatRequest:
    return chat("hunyuan-turbos-latest", key=COMPAT_KEY, **kwargs)


@respx.mock
async def test_compatible_answer_and_the_exact_request() -> None:
    route = respx.post(COMPAT_URL).mock(return_value=sse(recorded("hunyuan", "compatible_answer")))
    request = chat(
        "hunyuan-turbos-latest",
        Message("system", "你是腾讯混元。"),
        Message("user", "你好"),
        key=COMPAT_KEY,
        params=HunyuanCompatible.clean_params(
            {
                "temperature": 1.2,
                "top_p": 0.7,
                "max_tokens": 800,
                "seed": 10000,
                "stop": ["END"],
                "enable_enhancement": True,
            }
        ),
    )

    events = await collect(HunyuanCompatible(), request)

    assert events == COMPAT_ANSWER
    sent = route.calls.last.request
    assert str(sent.url) == COMPAT_URL
    assert sent.headers["authorization"] == f"Bearer {COMPAT_KEY}"
    assert sent_json(sent) == {
        "model": "hunyuan-turbos-latest",
        "messages": [
            {"role": "system", "content": "你是腾讯混元。"},
            {"role": "user", "content": "你好"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 1.2,
        "top_p": 0.7,
        "max_tokens": 800,
        "seed": 10000,
        "stop": ["END"],
        "enable_enhancement": True,
    }


@respx.mock
async def test_compatible_tool_call() -> None:
    route = respx.post(COMPAT_URL).mock(
        return_value=sse(recorded("hunyuan", "compatible_tool_call"))
    )

    events = await collect(
        HunyuanCompatible(), dataclasses.replace(compat_chat(), tools=(WEATHER,))
    )

    assert events == [
        ToolCall("call_cvn0q3kb5n8s", "get_weather", '{"city":"广州"}'),
        Usage(input_tokens=88, output_tokens=15),
        Finish("tool_calls"),
    ]
    assert sent_json(route.calls.last.request)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "查询城市天气。",
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]


@respx.mock
async def test_compatible_moderation_stop_is_a_content_filter_finish() -> None:
    respx.post(COMPAT_URL).mock(return_value=sse(recorded("hunyuan", "compatible_sensitive")))

    events = await collect(HunyuanCompatible(), compat_chat())

    assert events == [
        TextDelta("这个话题"),
        Usage(input_tokens=10, output_tokens=3),
        Finish("content_filter"),
    ]


def test_compatible_declares_its_key_and_parameters() -> None:
    assert HunyuanCompatible.key_env == "HUNYUAN_API_KEY"
    assert HunyuanCompatible.extra_credentials == {}
    assert HunyuanCompatible.supports_tools and HunyuanCompatible.supports_images
    assert [p.name for p in HunyuanCompatible.params] == [
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "stop",
        "enable_enhancement",
    ]
    with pytest.raises(ParamError, match="Unknown parameter: presence_penalty."):
        HunyuanCompatible.clean_params({"presence_penalty": 1})
