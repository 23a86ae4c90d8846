"""What is Huawei Pangu's own: the IAM token exchange (cached, shared, renewed) or an app
code, the request bytes, its set-up errors. The scenarios every adapter shares (with the IAM
exchange mocked) are in test_contract.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
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
    Message,
    ParamError,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from providers.pangu import IAMTokens, Pangu
from tests.providers.replay import (
    FakeSleep,
    collect,
    error_body,
    head,
    recorded,
    sent_json,
    sse,
)

PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEPLOYMENT = "5b3c8f2e-1d4a-4e6b-9c7a-2f1e0d9c8b7a"
BASE = f"https://pangu.cn-southwest-2.myhuaweicloud.com/v1/{PROJECT_ID}/deployments/{DEPLOYMENT}"
CHAT_URL = f"{BASE}/chat/completions"
IAM_URL = "https://iam.cn-southwest-2.myhuaweicloud.com/v3/auth/tokens"

IAM = {
    "username": "playground-bot",
    "password": "S3cret!Pangu#2025",
    "domain": "acme-cloud",
    "project": "cn-southwest-2",
}
TOKEN = "MIIYXQYJKoZIhvcNAQcCoIIYTjCCGEoCAQExDTALBglghkgBZQMEAgEwghZrBgkqhkiG9w0BBwGgghZcBIIW"
TOKEN_2 = "MIIZbQYJKoZIhvcNAQcCoIIZXjCCGVoCAQExDTALBglghkgBZQMEAgEwghd7BgkqhkiG9w0BBwGgghdsBIIX"
APP_CODE = "7c1f3e5a9b2d4f6e8a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f"

ISSUED = datetime(2025, 8, 5, 8, 0, tzinfo=UTC).timestamp()
EXPIRES = ISSUED + 24 * 3600

ANSWER = [
    TextDelta("您好"),
    TextDelta("，我是盘古大模型"),
    TextDelta("。"),
    Usage(input_tokens=15, output_tokens=8),
    Finish("stop"),
]


class Clock:
    def __init__(self, now: float = ISSUED) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def iam_answer(token: str = TOKEN, expires_at: str = "2025-08-06T08:00:00.000000Z") -> Any:
    return httpx.Response(
        201,
        headers={"X-Subject-Token": token},
        json={
            "token": {
                "expires_at": expires_at,
                "issued_at": "2025-08-05T08:00:00.000000Z",
                "methods": ["password"],
                "project": {
                    "domain": {"id": "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b", "name": "acme-cloud"},
                    "id": PROJECT_ID,
                    "name": "cn-southwest-2",
                },
                "user": {
                    "domain": {"id": "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b", "name": "acme-cloud"},
                    "id": "4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a",
                    "name": "playground-bot",
                    "password_expires_at": "",
                },
            }
        },
    )


def ask(
    *messages: Message,
    app_code: str = "",
    extra: dict[str, str] | None = None,
    base_url: str = BASE,
    params: dict[str, Any] | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> ChatRequest:
    return ChatRequest(
        model="pangu-nlp-n2-32k",
        messages=messages or (Message("user", "你好"),),
        params=params or {},
        credentials=Credentials(api_key=app_code, extra=IAM if extra is None else extra),
        base_url=base_url,
        tools=tools,
    )


def pangu(clock: Clock | None = None) -> Pangu:
    return Pangu(tokens=IAMTokens(clock=clock or Clock()))


# --------------------------------------------------------------------------- IAM


@respx.mock
async def test_iam_exchange_then_the_exact_chat_request() -> None:
    iam = respx.post(IAM_URL).mock(return_value=iam_answer())
    chat = respx.post(CHAT_URL).mock(return_value=sse(recorded("pangu", "answer")))
    request = ask(
        Message("system", "你是华为云的助手。"),
        Message("user", "你好"),
        params=Pangu.clean_params({"temperature": 0.3, "max_tokens": 512, "top_p": 0.9}),
    )

    assert await collect(pangu(), request) == ANSWER

    exchange = iam.calls.last.request
    assert str(exchange.url) == IAM_URL
    assert exchange.headers["content-type"] == "application/json"
    assert sent_json(exchange) == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "playground-bot",
                        "password": "S3cret!Pangu#2025",
                        "domain": {"name": "acme-cloud"},
                    }
                },
            },
            "scope": {"project": {"name": "cn-southwest-2"}},
        }
    }
    sent = chat.calls.last.request
    assert str(sent.url) == CHAT_URL
    assert sent.headers["x-auth-token"] == TOKEN
    assert sent.headers["content-type"] == "application/json"
    assert "x-apig-appcode" not in sent.headers
    assert "authorization" not in sent.headers
    assert sent_json(sent) == {
        "messages": [
            {"role": "system", "content": "你是华为云的助手。"},
            {"role": "user", "content": "你好"},
        ],
        "stream": True,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 512,
    }


@respx.mock
async def test_token_is_reused_until_shortly_before_it_expires() -> None:
    iam = respx.post(IAM_URL).mock(side_effect=[iam_answer(TOKEN), iam_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: sse(recorded("pangu", "answer")))
    clock = Clock()
    provider = pangu(clock)

    assert await collect(provider, ask()) == ANSWER
    clock.now = EXPIRES - 601  # still more than the ten-minute margin left
    assert await collect(Pangu(tokens=provider.tokens), ask()) == ANSWER
    assert iam.call_count == 1

    clock.now = EXPIRES - 599
    assert await collect(provider, ask()) == ANSWER
    assert iam.call_count == 2
    tokens = [call.request.headers["x-auth-token"] for call in chat.calls]
    assert tokens == [TOKEN, TOKEN, TOKEN_2]


@respx.mock
async def test_token_is_kept_per_credential_set() -> None:
    iam = respx.post(IAM_URL).mock(side_effect=[iam_answer(TOKEN), iam_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: sse(recorded("pangu", "answer")))
    provider = pangu()

    await collect(provider, ask())
    await collect(provider, ask(extra={**IAM, "username": "another-bot"}))
    await collect(provider, ask())

    assert iam.call_count == 2
    tokens = [call.request.headers["x-auth-token"] for call in chat.calls]
    assert tokens == [TOKEN, TOKEN_2, TOKEN]


@respx.mock
async def test_concurrent_streams_share_one_exchange() -> None:
    async def slow_iam(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return iam_answer()

    iam = respx.post(IAM_URL).mock(side_effect=slow_iam)
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: sse(recorded("pangu", "answer")))
    provider = pangu()

    results = await asyncio.gather(*(collect(provider, ask()) for _ in range(5)))

    assert results == [ANSWER] * 5
    assert iam.call_count == 1
    assert chat.call_count == 5


@respx.mock
async def test_401_from_pangu_renews_the_token_once() -> None:
    expired = {"error_code": "APIG.0301", "error_msg": "Incorrect IAM authentication information"}
    iam = respx.post(IAM_URL).mock(side_effect=[iam_answer(TOKEN), iam_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(
        side_effect=[error_body(401, expired), sse(recorded("pangu", "answer"))]
    )

    assert await collect(pangu(), ask()) == ANSWER

    assert iam.call_count == 2
    assert [c.request.headers["x-auth-token"] for c in chat.calls] == [TOKEN, TOKEN_2]


@respx.mock
async def test_401_after_renewal_is_a_permanent_auth_failure() -> None:
    refused = {
        "error_code": "APIG.0301",
        "error_msg": f"Incorrect IAM authentication information: token {TOKEN_2} is invalid",
    }
    iam = respx.post(IAM_URL).mock(side_effect=[iam_answer(TOKEN), iam_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(return_value=error_body(401, refused))

    events = await collect(pangu(), ask())

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Huawei Pangu rejected the IAM token (401): Incorrect IAM authentication "
            "information: token [redacted] is invalid [APIG.0301]",
            permanent=True,
            status=401,
        )
    ]
    assert iam.call_count == 2
    assert chat.call_count == 2


@respx.mock
async def test_iam_trouble_is_retried() -> None:
    iam = respx.post(IAM_URL).mock(
        side_effect=[
            httpx.Response(201, json={"token": {}}),  # no X-Subject-Token
            error_body(503, {"error_code": "IAM.0001", "error_msg": "Service unavailable"}),
            iam_answer(),
        ]
    )
    respx.post(CHAT_URL).mock(return_value=sse(recorded("pangu", "answer")))
    retries: list[str] = []

    async def on_retry(attempt: int, delay: float, error: object) -> None:
        retries.append(str(error))

    async with httpx.AsyncClient() as client:
        events = [
            e async for e in pangu().stream(client, ask(), sleep=FakeSleep(), on_retry=on_retry)
        ]

    assert events == ANSWER
    assert iam.call_count == 3
    assert retries == [
        "Huawei Cloud IAM answered without a token for Huawei Pangu",
        "Huawei Cloud IAM (for Huawei Pangu) had a server error (503): Service unavailable",
    ]


def test_iam_endpoint_and_scope_follow_region_and_project() -> None:
    provider = Pangu()
    gateway = "https://apig.example.com/v1/p/deployments/d"
    assert provider.iam_url(ask()) == IAM_URL
    assert (
        provider.iam_url(ask(base_url=gateway, extra={**IAM, "project": "ap-southeast-1_ml"}))
        == "https://iam.ap-southeast-1.myhuaweicloud.com/v3/auth/tokens"
    )
    assert (
        provider.iam_url(ask(base_url=gateway, extra={**IAM, "project": PROJECT_ID}))
        == "https://iam.myhuaweicloud.com/v3/auth/tokens"
    )
    assert Pangu.iam_body({**IAM, "project": PROJECT_ID})["auth"]["scope"] == {
        "project": {"id": PROJECT_ID}
    }


# --------------------------------------------------------------------------- app code


@respx.mock
async def test_app_code_is_sent_as_a_header_without_iam() -> None:
    iam = respx.post(IAM_URL)
    chat = respx.post(CHAT_URL).mock(return_value=sse(recorded("pangu", "answer")))

    assert await collect(pangu(), ask(app_code=APP_CODE, extra={})) == ANSWER

    assert not iam.called
    sent = chat.calls.last.request
    assert sent.headers["x-apig-appcode"] == APP_CODE
    assert "x-auth-token" not in sent.headers


@respx.mock
async def test_bad_app_code_is_not_retried_nor_echoed() -> None:
    chat = respx.post(CHAT_URL).mock(
        return_value=error_body(
            401,
            {"error_code": "APIG.0101", "error_msg": f"AppCode {APP_CODE} does not exist"},
        )
    )

    events = await collect(pangu(), ask(app_code=APP_CODE, extra={}))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Huawei Pangu rejected the app code (401): AppCode [redacted] does not exist "
            "[APIG.0101]",
            permanent=True,
            status=401,
        )
    ]
    assert chat.call_count == 1


# --------------------------------------------------------------------------- set-up errors


async def test_missing_base_url_names_the_setting() -> None:
    events = await collect(pangu(), ask(base_url=""))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "No endpoint configured for Huawei Pangu: set PLAYGROUND_PANGU_BASE_URL to the "
            "deployment's URL (https://pangu.<region>.myhuaweicloud.com/v1/<project_id>"
            "/deployments/<deployment_id>).",
            permanent=True,
        )
    ]


async def test_missing_credentials_name_both_ways_in() -> None:
    events = await collect(pangu(), ask(extra={"username": "bot", "password": "pw"}))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "No credentials for Huawei Pangu: set PANGU_APP_CODE (an app code), or the IAM "
            "account with PANGU_IAM_USER, PANGU_IAM_PASSWORD, PANGU_IAM_DOMAIN, "
            "PANGU_IAM_PROJECT (PANGU_IAM_DOMAIN, PANGU_IAM_PROJECT missing).",
            permanent=True,
        )
    ]


def test_parameters_follow_pangu_bounds() -> None:
    with pytest.raises(ParamError, match="Temperature must be a number from 0 to 1; got 1.5."):
        Pangu.clean_params({"temperature": 1.5})
    with pytest.raises(ParamError, match="Unknown parameter: seed."):
        Pangu.clean_params({"seed": 1})


# --------------------------------------------------------------------------- streams


@respx.mock
async def test_tool_call_is_sent_and_assembled() -> None:
    respx.post(IAM_URL).mock(return_value=iam_answer())
    chat = respx.post(CHAT_URL).mock(return_value=sse(recorded("pangu", "tool_call")))
    weather = ToolSpec(
        "get_weather", "Current weather.", {"type": "object", "properties": {"location": {}}}
    )

    events = await collect(pangu(), ask(tools=(weather,)))

    assert events == [
        ToolCall("chatcmpl-tool-7e41c09b", "get_weather", '{"location": "贵阳"}'),
        Usage(input_tokens=120, output_tokens=21),
        Finish("tool_calls"),
    ]
    assert sent_json(chat.calls.last.request)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather.",
                "parameters": {"type": "object", "properties": {"location": {}}},
            },
        }
    ]


@respx.mock
async def test_end_without_done_after_a_finish_reason_is_complete() -> None:
    data = recorded("pangu", "answer")
    respx.post(IAM_URL).mock(return_value=iam_answer())
    respx.post(CHAT_URL).mock(return_value=sse(head(data, b"[DONE]")))

    assert await collect(pangu(), ask()) == ANSWER


def test_fixtures_use_data_without_a_space() -> None:
    for case in ("answer", "reasoning", "tool_call", "malformed", "error_in_stream"):
        for line in recorded("pangu", case).decode().splitlines():
            assert not line or line.startswith("data:{") or line == "data:[DONE]", case
            json.loads(line[5:]) if line.startswith("data:{") and case != "malformed" else None
