"""What is Baidu Qianfan / ERNIE's own: v1 (AK/SK → access token, cached and refreshed;
``result`` chunks ending on ``is_end``; bare-JSON errors in 200 bodies) and v2's request bytes.
The scenarios every adapter shares (with v1's token exchange mocked) are in
test_contract.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
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
    ToolSpec,
    Usage,
)
from providers.qianfan import TOKENS, AccessTokens, Qianfan, QianfanV1
from tests.providers.replay import (
    FakeSleep,
    collect,
    error_body,
    recorded,
    sent_json,
    sse,
)

# --------------------------------------------------------------------------- v1

AK = "Mc1hYJ8sNo2kRsFpqLd7Ub3G"
SK = "p2K8aWm9cR4tYx6ZbN1qVe3LsD7fHj0Q"
TOKEN = "24.6c5e1ff107f0e8bcef8c46d3424a0e78.2592000.1757058622.282335-35861298"
TOKEN_2 = "24.0b9d3e7a5c1f2468ace0bd13579f2468.2592000.1757062222.282335-35861298"
OAUTH_URL = "https://aip.baidubce.com/oauth/2.0/token"
CHAT_URL = "https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/ernie-4.0-8k-latest"
NOW = 1754382622.0

ANSWER = [
    TextDelta("你好！"),
    TextDelta("我是文心一言，"),
    TextDelta("有什么可以帮你？"),
    Usage(input_tokens=2, output_tokens=14),
    Finish("stop"),
]

WEATHER = ToolSpec(
    "get_weather",
    "当前天气。",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    """Each test starts (and leaves) the process-wide token cache empty."""
    TOKENS.clear()
    yield
    TOKENS.clear()


def v1_chat(
    *messages: Message,
    model: str = "ernie-4.0-8k-latest",
    ak: str = AK,
    sk: str = SK,
    params: dict[str, Any] | None = None,
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=messages or (Message("user", "你好"),),
        params=dict(params or {}),
        credentials=Credentials(api_key=ak, extra={"secret_key": sk}),
    )


def token_answer(token: str = TOKEN, expires_in: int = 2592000) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "refresh_token": "25.5e3c1a9f7d2b4e6a8c0f2d4b6e8a0c1e.315360000.2069742622.282335-3586",
            "expires_in": expires_in,
            "session_key": "9mzdDZXu3dENMHtP6grnHoJ0ylCQSS4OUtnXHnxqEn5J",
            "access_token": token,
            "scope": "public brain_all_scope wenxinworkshop_mgr ai_custom_yiyan_com",
            "session_secret": "d0d1e7c3b5a94f2e8c6a4b2d0f1e3c5a",
        },
    )


def v1_stream(case: str) -> httpx.Response:
    return sse(recorded("qianfan", case), headers={"content-type": "text/event-stream"})


@respx.mock
async def test_v1_exchanges_the_keys_then_sends_the_exact_chat_request() -> None:
    oauth = respx.post(OAUTH_URL).mock(return_value=token_answer())
    chat = respx.post(CHAT_URL).mock(return_value=v1_stream("v1_answer"))
    request = v1_chat(
        Message("system", "你是一个乐于助人的助手。"),
        Message("user", "你好"),
        Message("assistant", "你好，请问有什么事？"),
        Message("user", "介绍一下你自己"),
        params=QianfanV1.clean_params(
            {
                "temperature": 0.7,
                "top_p": 0.8,
                "penalty_score": 1.2,
                "max_tokens": 1024,
                "stop": ["\n\n"],
            }
        ),
    )

    events = await collect(QianfanV1(clock=Clock()), dataclasses.replace(request, tools=(WEATHER,)))

    assert events == ANSWER
    exchange = oauth.calls.last.request
    assert exchange.method == "POST"
    assert str(exchange.url) == (
        f"{OAUTH_URL}?grant_type=client_credentials&client_id={AK}&client_secret={SK}"
    )
    assert exchange.content == b""
    sent = chat.calls.last.request
    assert str(sent.url) == f"{CHAT_URL}?access_token={TOKEN}"
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(sent) == {
        "messages": [
            {"role": "user", "content": "你好"},
            {"role": "assistant", "content": "你好，请问有什么事？"},
            {"role": "user", "content": "介绍一下你自己"},
        ],
        "stream": True,
        "system": "你是一个乐于助人的助手。",
        "temperature": 0.7,
        "top_p": 0.8,
        "penalty_score": 1.2,
        "max_output_tokens": 1024,
        "stop": ["\n\n"],
        "functions": [
            {
                "name": "get_weather",
                "description": "当前天气。",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"enum": ["celsius", "fahrenheit"]},
                    },
                    "required": ["city"],
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("model", "endpoint"),
    [
        ("ERNIE-Bot-4", "completions_pro"),
        ("ernie-4.0-8k", "completions_pro"),
        ("ERNIE-Bot-turbo", "eb-instant"),
        ("ERNIE-Speed-8K", "ernie_speed"),
        ("ernie-speed-128k", "ernie-speed-128k"),
        ("my_custom_deploy", "my_custom_deploy"),
    ],
)
def test_v1_model_names_map_to_their_endpoints(model: str, endpoint: str) -> None:
    url = QianfanV1().chat_url(v1_chat(model=model))
    assert url == f"https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/{endpoint}"


@respx.mock
async def test_v1_token_is_cached_across_streams_and_instances() -> None:
    oauth = respx.post(OAUTH_URL).mock(side_effect=[token_answer(TOKEN), token_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: v1_stream("v1_answer"))

    first = await collect(QianfanV1(clock=Clock()), v1_chat())
    second = await collect(QianfanV1(clock=Clock(NOW + 3600)), v1_chat())

    assert first == second == ANSWER
    assert oauth.call_count == 1
    assert [c.request.url.params["access_token"] for c in chat.calls] == [TOKEN, TOKEN]


@respx.mock
async def test_v1_token_is_renewed_shortly_before_it_expires() -> None:
    oauth = respx.post(OAUTH_URL).mock(side_effect=[token_answer(TOKEN), token_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: v1_stream("v1_answer"))
    clock = Clock()
    provider = QianfanV1(clock=clock)

    await collect(provider, v1_chat())
    clock.now = NOW + 2592000 - 3601  # more than the hour's margin left: still good
    await collect(provider, v1_chat())
    clock.now = NOW + 2592000 - 3599  # within the margin: exchange again
    await collect(provider, v1_chat())

    assert oauth.call_count == 2
    assert [c.request.url.params["access_token"] for c in chat.calls] == [TOKEN, TOKEN, TOKEN_2]


@respx.mock
async def test_v1_token_is_kept_per_key_pair() -> None:
    oauth = respx.post(OAUTH_URL).mock(side_effect=[token_answer(TOKEN), token_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: v1_stream("v1_answer"))
    provider = QianfanV1(clock=Clock())

    await collect(provider, v1_chat())
    await collect(provider, v1_chat(ak="Zx9wVu8tSr7qPo6nMl5kJi4H"))
    await collect(provider, v1_chat())

    assert oauth.call_count == 2
    assert [c.request.url.params["access_token"] for c in chat.calls] == [TOKEN, TOKEN_2, TOKEN]


@respx.mock
async def test_v1_cache_is_keyed_by_a_hash_not_the_keys() -> None:
    respx.post(OAUTH_URL).mock(return_value=token_answer())
    respx.post(CHAT_URL).mock(return_value=v1_stream("v1_answer"))

    await collect(QianfanV1(clock=Clock()), v1_chat())

    (key,) = TOKENS._tokens
    assert AK not in key and SK not in key
    assert len(key) == 64  # a SHA-256 in hex


def test_v1_may_be_given_its_own_cache() -> None:
    tokens = AccessTokens()
    assert QianfanV1(tokens=tokens).tokens is tokens
    assert QianfanV1().tokens is TOKENS


@respx.mock
async def test_v1_concurrent_streams_share_one_exchange() -> None:
    async def slow_oauth(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return token_answer()

    oauth = respx.post(OAUTH_URL).mock(side_effect=slow_oauth)
    chat = respx.post(CHAT_URL).mock(side_effect=lambda _: v1_stream("v1_answer"))
    provider = QianfanV1(clock=Clock())

    results = await asyncio.gather(*(collect(provider, v1_chat()) for _ in range(5)))

    assert results == [ANSWER] * 5
    assert oauth.call_count == 1
    assert chat.call_count == 5


EXPIRED = {"error_code": 111, "error_msg": "Access token expired"}


def expired_as_body() -> httpx.Response:
    return error_body(200, EXPIRED)


def expired_as_line() -> httpx.Response:
    return sse(b'data: {"error_code":111,"error_msg":"Access token expired"}\n\n')


@pytest.mark.parametrize("refusal", [expired_as_body, expired_as_line])
@respx.mock
async def test_v1_expired_token_is_dropped_exchanged_and_retried_once(refusal: Any) -> None:
    oauth = respx.post(OAUTH_URL).mock(side_effect=[token_answer(TOKEN), token_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(
        side_effect=[v1_stream("v1_answer"), refusal(), v1_stream("v1_answer")]
    )
    provider = QianfanV1(clock=Clock())
    sleep = FakeSleep()

    assert await collect(provider, v1_chat()) == ANSWER
    assert await collect(provider, v1_chat(), sleep) == ANSWER

    assert oauth.call_count == 2
    assert [c.request.url.params["access_token"] for c in chat.calls] == [TOKEN, TOKEN, TOKEN_2]
    assert sleep.delays == []  # the refresh is not a retry with backoff
    # The fresh token is what the next stream uses.
    await collect(provider, v1_chat())
    assert chat.calls.last.request.url.params["access_token"] == TOKEN_2


@respx.mock
async def test_v1_token_refused_again_after_refresh_is_a_permanent_auth_failure() -> None:
    def invalid(request: httpx.Request) -> httpx.Response:
        token = request.url.params["access_token"]
        message = f"Access token invalid or no longer valid: {token}"
        return error_body(200, {"error_code": 110, "error_msg": message})

    oauth = respx.post(OAUTH_URL).mock(side_effect=[token_answer(TOKEN), token_answer(TOKEN_2)])
    chat = respx.post(CHAT_URL).mock(side_effect=invalid)

    events = await collect(QianfanV1(clock=Clock()), v1_chat())

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Baidu Qianfan says the access token is invalid (110): Access token invalid or no "
            "longer valid: [redacted]",
            permanent=True,
        )
    ]
    assert oauth.call_count == 2
    assert chat.call_count == 2


@respx.mock
async def test_v1_token_exchange_trouble_is_retried() -> None:
    oauth = respx.post(OAUTH_URL).mock(
        side_effect=[httpx.Response(502, text="Bad Gateway"), token_answer()]
    )
    respx.post(CHAT_URL).mock(return_value=v1_stream("v1_answer"))

    events = await collect(QianfanV1(clock=Clock()), v1_chat())

    assert events == ANSWER
    assert oauth.call_count == 2


async def test_v1_missing_keys_are_named() -> None:
    events = await collect(QianfanV1(), v1_chat(sk=""))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Baidu Qianfan needs an API key and a secret key: set QIANFAN_SECRET_KEY.",
            permanent=True,
        )
    ]


async def test_v1_refuses_images_before_any_call() -> None:
    request = v1_chat(Message("user", (TextPart("这是什么？"), ImagePart(data="iVBORw0KGgo="))))

    events = await collect(QianfanV1(), request)

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Baidu Qianfan (v1) cannot take images; remove them from the turn.",
            permanent=True,
        )
    ]


@respx.mock
async def test_v1_rate_limit_in_a_200_body_then_as_a_data_line_is_retried() -> None:
    respx.post(OAUTH_URL).mock(return_value=token_answer())
    tpm = {"error_code": 336502, "error_msg": "Rate limit reached for TPM"}
    chat = respx.post(CHAT_URL).mock(
        side_effect=[
            error_body(200, tpm),
            v1_stream("v1_rate_limited_line"),
            v1_stream("v1_answer"),
        ]
    )
    retries: list[str] = []

    async def on_retry(attempt: int, delay: float, error: object) -> None:
        retries.append(str(error))

    async with httpx.AsyncClient() as client:
        events = [
            e
            async for e in QianfanV1(clock=Clock()).stream(
                client, v1_chat(), sleep=FakeSleep(), on_retry=on_retry
            )
        ]

    assert events == ANSWER
    assert retries == [
        "Rate limited by Baidu Qianfan (336502): Rate limit reached for TPM",
        "Rate limited by Baidu Qianfan (18): Open api qps request limit reached",
    ]
    assert chat.call_count == 3


@pytest.mark.parametrize(
    ("body", "kind", "permanent", "message"),
    [
        (
            {"error_code": 17, "error_msg": "Open api daily request limit reached"},
            ErrorKind.RATE_LIMIT,
            True,
            "Baidu Qianfan's daily request limit is reached (or billing is off) (17): Open api "
            "daily request limit reached",
        ),
        (
            {"error_code": 336003, "error_msg": "the length of messages must be an odd number"},
            ErrorKind.BAD_REQUEST,
            True,
            "Baidu Qianfan refused a parameter (336003): the length of messages must be an odd "
            "number",
        ),
        (
            {"error_code": 336999, "error_msg": "the input contains sensitive content"},
            ErrorKind.CONTENT_FILTER,
            True,
            "Baidu Qianfan blocked the content (336999): the input contains sensitive content",
        ),
        (
            {"code": "rpm_rate_limit_exceeded", "msg": "Rate limit reached for RPM"},
            ErrorKind.RATE_LIMIT,
            False,
            "Rate limited by Baidu Qianfan (rpm_rate_limit_exceeded): Rate limit reached for RPM",
        ),
    ],
)
@respx.mock
async def test_v1_error_codes_in_a_200_body(
    body: dict[str, Any], kind: ErrorKind, permanent: bool, message: str
) -> None:
    respx.post(OAUTH_URL).mock(return_value=token_answer())
    respx.post(CHAT_URL).mock(return_value=error_body(200, body))

    events = await collect(QianfanV1(clock=Clock()), v1_chat())

    failure = events[-1]
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.permanent) == (kind, permanent)
    assert failure.message.split(" — retried")[0] == message


@respx.mock
async def test_v1_unsafe_input_ends_as_content_filtered() -> None:
    respx.post(OAUTH_URL).mock(return_value=token_answer())
    respx.post(CHAT_URL).mock(return_value=v1_stream("v1_blocked"))

    events = await collect(QianfanV1(clock=Clock()), v1_chat())

    assert events == [
        TextDelta("我不太明白你的意思，换个话题吧。"),
        Usage(input_tokens=11, output_tokens=9),
        Finish("content_filter"),
    ]


def test_v1_declares_its_credentials_and_parameters() -> None:
    assert QianfanV1.key_env == "QIANFAN_ACCESS_KEY"
    assert QianfanV1.extra_credentials == {"secret_key": "QIANFAN_SECRET_KEY"}
    assert QianfanV1.supports_tools and not QianfanV1.supports_images
    by_name = {p.name: p for p in QianfanV1.params}
    assert list(by_name) == ["temperature", "top_p", "penalty_score", "max_tokens", "stop"]
    assert (by_name["penalty_score"].minimum, by_name["penalty_score"].maximum) == (1, 2)
    assert all(p.description for p in QianfanV1.params)
    with pytest.raises(ParamError, match="Temperature must be a number from 0.01 to 1"):
        QianfanV1.clean_params({"temperature": 0})
    with pytest.raises(ParamError, match="Penalty score must be a number from 1 to 2"):
        QianfanV1.clean_params({"penalty_score": 2.5})
    with pytest.raises(ParamError, match="Unknown parameter: seed."):
        QianfanV1.clean_params({"seed": 1})


# --------------------------------------------------------------------------- v2

V2_URL = "https://qianfan.baidubce.com/v2/chat/completions"
V2_KEY = "bce-v3/ALTAK-Fq0dPL3nNNsb2EZXDCtUG/8f2b0c4e6a1d3f5b7c9e0a2d4f6b8c1e3a5d7f9b"

V2_ANSWER = [
    TextDelta("你好！"),
    TextDelta("有什么可以"),
    TextDelta("帮你的吗？"),
    Usage(input_tokens=3, output_tokens=9),
    Finish("stop"),
]


def v2_chat(
    *messages: Message, app_id: str = "", params: dict[str, Any] | None = None
) -> ChatRequest:
    return ChatRequest(
        model="ernie-4.0-turbo-8k",
        messages=messages or (Message("user", "你好"),),
        params=dict(params or {}),
        credentials=Credentials(api_key=V2_KEY, extra={"app_id": app_id} if app_id else {}),
    )


@respx.mock
async def test_v2_answer_and_the_exact_request() -> None:
    route = respx.post(V2_URL).mock(return_value=sse(recorded("qianfan", "v2_answer")))
    request = v2_chat(
        Message("system", "你是文心一言。"),
        Message(
            "user",
            (TextPart("这是什么？"), ImagePart(url="https://example.com/cat.png")),
        ),
        app_id="app-Xv3yU9kP",
        params=Qianfan.clean_params(
            {
                "temperature": 0.5,
                "top_p": 0.9,
                "max_tokens": 512,
                "seed": 7,
                "stop": ["。"],
                "penalty_score": 1.1,
            }
        ),
    )

    events = await collect(Qianfan(), dataclasses.replace(request, tools=(WEATHER,)))

    assert events == V2_ANSWER
    sent = route.calls.last.request
    assert str(sent.url) == V2_URL
    assert sent.headers["authorization"] == f"Bearer {V2_KEY}"
    assert sent.headers["appid"] == "app-Xv3yU9kP"
    assert sent_json(sent) == {
        "model": "ernie-4.0-turbo-8k",
        "messages": [
            {"role": "system", "content": "你是文心一言。"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "这是什么？"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
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
                    "description": "当前天气。",
                    "parameters": dict(WEATHER.parameters),
                },
            }
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "max_completion_tokens": 512,
        "seed": 7,
        "stop": ["。"],
        "penalty_score": 1.1,
    }


@respx.mock
async def test_v2_without_app_id_sends_no_appid_header() -> None:
    route = respx.post(V2_URL).mock(return_value=sse(recorded("qianfan", "v2_answer")))

    await collect(Qianfan(), v2_chat())

    assert "appid" not in route.calls.last.request.headers


@respx.mock
async def test_v2_unsafe_image_is_a_content_filter_failure() -> None:
    respx.post(V2_URL).mock(
        return_value=error_body(
            400,
            {
                "error": {
                    "code": "image_url_unsafe",
                    "message": "the content of image_url.url is unsafe",
                    "type": "unsafe_request",
                },
                "id": "as-5fk1m8r3td",
            },
        )
    )

    events = await collect(Qianfan(), v2_chat())

    assert events == [
        Failure(
            ErrorKind.CONTENT_FILTER,
            "Baidu Qianfan refused the request (400): the content of image_url.url is unsafe",
            permanent=True,
            status=400,
        )
    ]


def test_v2_declares_its_credentials_and_parameters() -> None:
    assert Qianfan.key_env == "QIANFAN_API_KEY"
    assert Qianfan.extra_credentials == {"app_id": "QIANFAN_APP_ID"}
    assert Qianfan.optional_credentials == {"app_id"}
    assert Qianfan.supports_tools and Qianfan.supports_images
    names = [p.name for p in Qianfan.params]
    assert names == [
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "penalty_score",
    ]
    with pytest.raises(ParamError, match="Penalty score must be a number from 1 to 2"):
        Qianfan.clean_params({"penalty_score": 0.5})
