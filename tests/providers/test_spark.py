"""iFlytek Spark: the WebSocket API (signed URL, frames, errors, timeouts) against a real local
websocket server replaying recorded frames, and what is the HTTP endpoint's own (its request
bytes, tools as an object, error codes in a 200 body). The HTTP endpoint's shared scenarios
are in test_contract.py."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import respx
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from providers.base import (
    ChatRequest,
    Credentials,
    ErrorKind,
    Failure,
    Finish,
    ImagePart,
    Message,
    ParamError,
    ReadLimits,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from providers.spark import Spark, SparkHTTP, signed_url
from tests.providers.replay import (
    STREAMS,
    FakeSleep,
    collect,
    recorded,
    sent_json,
    sse,
)

APP_ID = "5f8d3c21"
API_KEY = "a3c9e1f07b2d4e6f8a0c1e3b5d7f9a2c"
API_SECRET = "ZTk0YjQ2NmU4OTdkNDc1YjAwYjE4ZmM3"
PASSWORD = "kXpTsQwLmNbVcRzAyUe:NjAxYjFjODQ3ZmE5"
NOW = 1683283419.0  # Fri, 05 May 2023 10:43:39 GMT
DATE = "Fri, 05 May 2023 10:43:39 GMT"

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)

ANSWER = [
    TextDelta("你好"),
    TextDelta("！我是讯飞星火认知大模型"),
    TextDelta("，很高兴"),
    TextDelta("为你服务。"),
    Usage(input_tokens=4, output_tokens=18),
    Finish("stop"),
]


def frames(case: str) -> list[str]:
    """``tests/fixtures/streams/spark/<case>.jsonl``: one websocket text frame per line."""
    text = (STREAMS / "spark" / f"{case}.jsonl").read_text("utf-8")
    return text.splitlines()


def expected_query(host: str, path: str, date: str = DATE) -> dict[str, str]:
    """The signed query, computed by hand from iFlytek's published recipe."""
    origin = "host: " + host + "\n" + "date: " + date + "\n" + "GET " + path + " HTTP/1.1"
    digest = hmac.new(API_SECRET.encode("utf-8"), origin.encode("utf-8"), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode("ascii")
    authorization_origin = (
        'api_key="' + API_KEY + '", algorithm="hmac-sha256", '
        'headers="host date request-line", signature="' + signature + '"'
    )
    authorization = base64.b64encode(authorization_origin.encode("utf-8")).decode("ascii")
    return {"authorization": authorization, "date": date, "host": host}


# --------------------------------------------------------------------------- fake server


@dataclass
class Plan:
    """What the server does with one connection."""

    frames: list[str] = field(default_factory=list)
    reject: int = 0  # answer the handshake with this HTTP status instead
    reject_body: str = ""
    reject_headers: dict[str, str] = field(default_factory=dict)
    end: str = "close"  # close (as Spark does after the last frame), abort, or hang
    gap: float = 0.0  # seconds between frames


class FakeSpark:
    """A websocket server that checks the signed URL like iFlytek's gateway, records the
    frame the client sends, then replays recorded frames (each in fragments)."""

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.port = 0
        self.paths: list[str] = []
        self.received: list[str] = []
        self.sent = 0
        self.saw_close = False
        self.finished = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v3.5/chat"

    def plan(self) -> Plan:
        return self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.paths.append(request.path)
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if query != expected_query(f"127.0.0.1:{self.port}", url.path, query.get("date", "")):
            body = json.dumps({"message": "HMAC signature cannot be verified"})
            return connection.respond(HTTPStatus.UNAUTHORIZED, body)
        plan = self.plan()
        connection.plan = plan  # type: ignore[attr-defined]
        if plan.reject:
            response = connection.respond(HTTPStatus(plan.reject), plan.reject_body)
            for name, value in plan.reject_headers.items():
                response.headers[name] = value
            return response
        return None

    async def handler(self, ws: ServerConnection) -> None:
        plan: Plan = ws.plan  # type: ignore[attr-defined]
        try:
            self.received.append(str(await ws.recv()))
            for frame in plan.frames:
                # In odd-sized fragments, as a network may deliver a message.
                await ws.send([frame[i : i + 37] for i in range(0, len(frame), 37)])
                self.sent += 1
                await asyncio.sleep(plan.gap)
            if plan.end == "abort":
                ws.transport.abort()
            elif plan.end == "hang":
                await ws.wait_closed()
            else:
                await ws.close()
        except ConnectionClosed:
            self.saw_close = True
        finally:
            self.finished.set()


@pytest.fixture
async def server() -> AsyncIterator[FakeSpark]:
    fake = FakeSpark()
    async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as ws:
        fake.port = ws.sockets[0].getsockname()[1]
        yield fake


def ask(
    model: str = "generalv3.5",
    *messages: Message,
    base_url: str = "",
    params: dict[str, Any] | None = None,
    tools: tuple[ToolSpec, ...] = (),
    api_key: str = API_KEY,
    extra: dict[str, str] | None = None,
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=messages or (Message("user", "你好"),),
        params=params or {},
        credentials=Credentials(
            api_key=api_key,
            extra={"app_id": APP_ID, "api_secret": API_SECRET} if extra is None else extra,
        ),
        base_url=base_url,
        tools=tools,
    )


def spark(**kwargs: Any) -> Spark:
    return Spark(clock=lambda: NOW, **kwargs)


# --------------------------------------------------------------------------- signing


def test_signed_url_matches_the_published_recipe() -> None:
    url = signed_url("wss://spark-api.xf-yun.com/v3.5/chat", API_KEY, API_SECRET, NOW)

    query = expected_query("spark-api.xf-yun.com", "/v3.5/chat")
    assert url == (
        "wss://spark-api.xf-yun.com/v3.5/chat"
        f"?authorization={quote(query['authorization'], safe='')}"
        "&date=Fri%2C+05+May+2023+10%3A43%3A39+GMT"
        "&host=spark-api.xf-yun.com"
    )
    # The signature is over exactly these three lines (and nothing else).
    authorization = base64.b64decode(query["authorization"]).decode()
    assert authorization.startswith(f'api_key="{API_KEY}", algorithm="hmac-sha256", ')


async def test_the_server_receives_the_signed_url_and_the_exact_frame(server: FakeSpark) -> None:
    server.plans = [Plan(frames("answer"))]
    request = ask(
        "Spark Max",
        Message("system", "你是一个简洁的助手。"),
        Message("user", "你好"),
        Message("assistant", "你好！"),
        Message("user", "介绍一下你自己"),
        base_url=server.base_url,
        params=Spark.clean_params({"temperature": "0.5", "max_tokens": 1024, "top_k": 4}),
    )

    assert await collect(spark(), request) == ANSWER

    query = expected_query(f"127.0.0.1:{server.port}", "/v3.5/chat")
    assert server.paths == [
        "/v3.5/chat"
        f"?authorization={quote(query['authorization'], safe='')}"
        "&date=Fri%2C+05+May+2023+10%3A43%3A39+GMT"
        f"&host=127.0.0.1%3A{server.port}"
    ]
    assert json.loads(server.received[0]) == {
        "header": {"app_id": APP_ID},
        "parameter": {
            "chat": {"domain": "generalv3.5", "temperature": 0.5, "max_tokens": 1024, "top_k": 4}
        },
        "payload": {
            "message": {
                "text": [
                    {"role": "system", "content": "你是一个简洁的助手。"},
                    {"role": "user", "content": "你好"},
                    {"role": "assistant", "content": "你好！"},
                    {"role": "user", "content": "介绍一下你自己"},
                ]
            }
        },
    }
    assert "\\u" not in server.received[0]  # sent as UTF-8, as the samples do


# --------------------------------------------------------------------------- answers


async def test_reasoning_then_answer(server: FakeSpark) -> None:
    server.plans = [Plan(frames("reasoning"))]

    events = await collect(spark(), ask("x1", base_url=server.base_url))

    assert events == [
        ReasoningDelta("用户问27乘以453。"),
        ReasoningDelta("27×453=12231。"),
        TextDelta("27 × 453 = 12231"),
        Usage(input_tokens=12, output_tokens=40),
        Finish("stop"),
    ]
    assert json.loads(server.received[0])["parameter"]["chat"] == {"domain": "x1"}


async def test_function_call_is_sent_and_returned(server: FakeSpark) -> None:
    server.plans = [Plan(frames("function_call"))]
    request = ask(
        "4.0Ultra",
        Message("user", "合肥天气怎么样？"),
        base_url=server.base_url,
        tools=(WEATHER,),
    )

    events = await collect(spark(), request)

    assert events == [
        ToolCall("call_0", "get_weather", '{"location":"合肥"}'),
        Usage(input_tokens=96, output_tokens=13),
        Finish("tool_calls"),
    ]
    sent = json.loads(server.received[0])
    assert sent["parameter"]["chat"]["domain"] == "4.0Ultra"
    assert sent["payload"]["functions"] == {
        "text": [
            {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            }
        ]
    }


async def test_malformed_frame_is_skipped(server: FakeSpark) -> None:
    server.plans = [Plan(frames("malformed"))]

    events = await collect(spark(), ask(base_url=server.base_url))

    assert events == [
        TextDelta("很好"),
        TextDelta("，谢谢。"),
        Usage(input_tokens=3, output_tokens=5),
        Finish("stop"),
    ]


# --------------------------------------------------------------------------- errors


async def test_bad_signature_at_the_handshake_is_a_permanent_auth_failure(
    server: FakeSpark,
) -> None:
    server.plans = [Plan(frames("answer"))]
    request = ask(base_url=server.base_url, extra={"app_id": APP_ID, "api_secret": "wrong"})

    events = await collect(spark(), request)

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "iFlytek Spark rejected the API key (401): HMAC signature cannot be verified",
            permanent=True,
            status=401,
        )
    ]
    assert len(server.paths) == 1


async def test_429_at_the_handshake_honours_retry_after_then_gives_up(server: FakeSpark) -> None:
    server.plans = [
        Plan(
            reject=429,
            reject_body='{"message":"API rate limit exceeded"}',
            reject_headers={"Retry-After": "11"},
        )
    ]
    sleep = FakeSleep()

    events = await collect(spark(), ask(base_url=server.base_url), sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by iFlytek Spark (429): API rate limit exceeded "
            "— retried 3 times over 33 s",
            permanent=False,
            status=429,
        )
    ]
    assert sleep.delays == [11.0, 11.0, 11.0]
    assert len(server.paths) == 4


async def test_429_then_an_answer(server: FakeSpark) -> None:
    server.plans = [
        Plan(reject=429, reject_body="", reject_headers={"Retry-After": "2"}),
        Plan(frames("answer")),
    ]
    sleep = FakeSleep()

    assert await collect(spark(), ask(base_url=server.base_url), sleep) == ANSWER
    assert sleep.delays == [2.0]


async def test_error_frame_for_blocked_input_is_permanent(server: FakeSpark) -> None:
    server.plans = [Plan(frames("input_blocked"))]

    events = await collect(spark(), ask(base_url=server.base_url))

    assert events == [
        Failure(
            ErrorKind.CONTENT_FILTER,
            "iFlytek Spark blocked the content (10013): "
            "输入内容审核不通过，涉嫌违规，请重新调整输入内容",
            permanent=True,
        )
    ]
    assert len(server.paths) == 1


async def test_error_frame_for_the_qps_limit_is_retried(server: FakeSpark) -> None:
    server.plans = [Plan(frames("qps_limit"))]
    sleep = FakeSleep()

    events = await collect(spark(), ask(base_url=server.base_url), sleep)

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.kind is ErrorKind.RATE_LIMIT
    assert not failure.permanent
    assert failure.message.startswith(
        "Rate limited by iFlytek Spark (11202): AppIdQpsOverFlowError:The QPS of the appid "
        "exceeds the limit — retried 3 times over "
    )
    assert len(sleep.delays) == 3
    assert len(server.paths) == 4


async def test_error_frame_mid_answer_is_reported_at_once(server: FakeSpark) -> None:
    error = {
        "header": {
            "code": 10014,
            "message": "输出内容涉及敏感信息，审核不通过，后续结果无法展示给用户",
            "sid": "cht000cb8d6@dx1912f7ae9d3b8f2560",
            "status": 2,
        }
    }
    server.plans = [Plan([*frames("answer")[:2], json.dumps(error, ensure_ascii=False)])]

    events = await collect(spark(), ask(base_url=server.base_url))

    assert events == [
        TextDelta("你好"),
        TextDelta("！我是讯飞星火认知大模型"),
        Failure(
            ErrorKind.CONTENT_FILTER,
            "iFlytek Spark blocked the content (10014): "
            "输出内容涉及敏感信息，审核不通过，后续结果无法展示给用户",
            permanent=True,
        ),
    ]


@pytest.mark.parametrize("end", ["abort", "close"])
async def test_server_gone_mid_answer_is_a_cut(server: FakeSpark, end: str) -> None:
    server.plans = [Plan(frames("answer")[:2], end=end)]

    events = await collect(spark(), ask(base_url=server.base_url))

    assert events == [
        TextDelta("你好"),
        TextDelta("！我是讯飞星火认知大模型"),
        Failure(ErrorKind.NETWORK, "The connection to iFlytek Spark was cut mid-answer", False),
    ]
    assert len(server.paths) == 1


async def test_silence_before_the_first_frame_times_out_and_is_retried(server: FakeSpark) -> None:
    server.plans = [Plan([], end="hang")]
    sleep = FakeSleep()

    events = await collect(spark(frame_timeout=0.1), ask(base_url=server.base_url), sleep)

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.kind is ErrorKind.TIMEOUT
    assert failure.message.startswith("iFlytek Spark did not answer in time — retried 3 times")
    assert len(server.paths) == 4


async def test_a_frame_past_the_line_bound_ends_the_answer_and_keeps_what_arrived(
    server: FakeSpark,
) -> None:
    huge = json.dumps({"header": {"code": 0, "status": 1}, "payload": {"x": "y" * 5000}})
    server.plans = [Plan([*frames("answer")[:1], huge], end="hang")]
    request = dataclasses.replace(
        ask(base_url=server.base_url), limits=ReadLimits(line_bytes=4096, stall_seconds=1)
    )

    events = await collect(spark(), request)

    assert events == [
        TextDelta("你好"),
        Failure(
            ErrorKind.UPSTREAM,
            "iFlytek Spark sent one piece of its answer longer than 4 KB, the most read here "
            "at once; the answer was stopped there and what had arrived is kept",
            True,
        ),
    ]
    assert len(server.paths) == 1


async def test_silence_within_the_requests_limits_has_their_sentences(server: FakeSpark) -> None:
    limits = ReadLimits(first_byte_seconds=0.1, stall_seconds=0.1)
    server.plans = [Plan(frames("answer")[:1], end="hang")]

    events = await collect(
        spark(), dataclasses.replace(ask(base_url=server.base_url), limits=limits)
    )

    assert events == [
        TextDelta("你好"),
        Failure(
            ErrorKind.TIMEOUT,
            "iFlytek Spark sent nothing for 0.1 s, so the answer was stopped; what had arrived "
            "is kept",
            False,
        ),
    ]


async def test_a_handshake_never_answered_takes_the_first_byte_wait_once() -> None:
    """A server that takes the connection and never answers the handshake: the handshake
    is part of the first-byte wait the tries share (it took up to 10 s a try, four tries)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    silent = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    limits = ReadLimits(first_byte_seconds=0.5)
    request = dataclasses.replace(ask(base_url=f"ws://127.0.0.1:{port}"), limits=limits)
    loop = asyncio.get_running_loop()
    try:
        began = loop.time()
        events = await collect(spark(), request)
        took = loop.time() - began
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()

    assert events == [
        Failure(ErrorKind.TIMEOUT, "iFlytek Spark did not start answering within 0.5 s", False)
    ]
    assert took < 3  # once, not 4 × 10 s
    assert len(held) == 1  # no try once the wait is spent


async def test_silence_mid_answer_times_out(server: FakeSpark) -> None:
    server.plans = [Plan(frames("answer")[:1], end="hang")]

    events = await collect(spark(frame_timeout=0.1), ask(base_url=server.base_url))

    assert events == [
        TextDelta("你好"),
        Failure(ErrorKind.TIMEOUT, "iFlytek Spark stopped answering mid-stream", False),
    ]


async def test_nobody_listening_is_a_network_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleep = FakeSleep()

    events = await collect(spark(), ask(base_url=f"ws://127.0.0.1:{port}/v3.5/chat"), sleep)

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.kind is ErrorKind.NETWORK
    assert failure.message.startswith(
        "Could not reach iFlytek Spark (ConnectionRefusedError) — retried 3 times"
    )


async def test_redirects_are_not_followed(server: FakeSpark) -> None:
    server.plans = [
        Plan(reject=302, reject_headers={"Location": "ws://127.0.0.1:9/elsewhere"}),
    ]

    events = await collect(spark(), ask(base_url=server.base_url))

    assert events == [
        Failure(ErrorKind.BAD_REQUEST, "iFlytek Spark refused the request (302)", True, 302)
    ]
    assert len(server.paths) == 1


async def test_closing_early_closes_the_websocket_at_once(server: FakeSpark) -> None:
    many = frames("answer")[:3] * 20 + frames("answer")[3:]
    server.plans = [Plan(many, gap=0.01)]

    async with httpx.AsyncClient() as client:
        stream = spark().stream(client, ask(base_url=server.base_url))
        assert await anext(stream) == TextDelta("你好")
        await stream.aclose()

    await asyncio.wait_for(server.finished.wait(), 1)
    assert server.saw_close
    assert server.sent < len(many)


# --------------------------------------------------------------------------- set-up


def test_model_ids_pick_domain_and_address() -> None:
    cases = {
        "Spark Max": ("wss://spark-api.xf-yun.com/v3.5/chat", "generalv3.5"),
        "generalv3.5": ("wss://spark-api.xf-yun.com/v3.5/chat", "generalv3.5"),
        "spark-4.0-ultra": ("wss://spark-api.xf-yun.com/v4.0/chat", "4.0Ultra"),
        "max-32k": ("wss://spark-api.xf-yun.com/chat/max-32k", "max-32k"),
        "Pro-128K": ("wss://spark-api.xf-yun.com/chat/pro-128k", "pro-128k"),
        "generalv3": ("wss://spark-api.xf-yun.com/v3.1/chat", "generalv3"),
        "lite": ("wss://spark-api.xf-yun.com/v1.1/chat", "lite"),
    }
    for model, (url, domain) in cases.items():
        found_url, found = Spark().endpoint(ask(model))
        assert (found_url, found.domain) == (url, domain), model

    # An explicit address wins; an unknown id on a known path takes the path's domain.
    url, found = Spark().endpoint(ask("my-spark", base_url="https://gw.example.com/v3.1/chat/"))
    assert (url, found.domain) == ("wss://gw.example.com/v3.1/chat", "generalv3")
    url, found = Spark().endpoint(ask("custom-7b", base_url="wss://gw.example.com/x/chat"))
    assert (url, found.domain) == ("wss://gw.example.com/x/chat", "custom-7b")


async def test_unknown_model_without_an_address_is_a_clear_error() -> None:
    events = await collect(spark(), ask("spark-mystery"))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "iFlytek Spark has no known address for model 'spark-mystery': give the model's "
            "full websocket URL as the base URL (like wss://spark-api.xf-yun.com/v3.5/chat).",
            True,
        )
    ]


async def test_missing_credential_parts_are_named() -> None:
    events = await collect(spark(), ask(extra={"app_id": APP_ID}))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "iFlytek Spark needs an app ID, API key and API secret: set SPARK_API_SECRET.",
            True,
        )
    ]


async def test_images_are_refused_before_connecting(server: FakeSpark) -> None:
    server.plans = [Plan(frames("answer"))]
    picture = Message("user", (TextPart("这是什么？"), ImagePart(data="R0lGODlhAQABAAAAACw=")))

    events = await collect(spark(), ask("generalv3.5", picture, base_url=server.base_url))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "iFlytek Spark cannot take images; remove them from the turn.",
            True,
        )
    ]
    assert server.paths == []


def test_parameters_follow_spark_bounds() -> None:
    assert Spark.clean_params({"top_k": "6", "temperature": 1}) == {"top_k": 6, "temperature": 1}
    with pytest.raises(ParamError, match="Top K must be a whole number from 1 to 6"):
        Spark.clean_params({"top_k": 7})
    with pytest.raises(ParamError, match="Temperature must be a number from 0.01 to 1"):
        Spark.clean_params({"temperature": 0})
    with pytest.raises(ParamError, match="Unknown parameter: seed."):
        Spark.clean_params({"seed": 1})


# --------------------------------------------------------------------------- HTTP

HTTP_URL = "https://spark-api-open.xf-yun.com/v1/chat/completions"

HTTP_ANSWER = [
    TextDelta("你好"),
    TextDelta("，有什么"),
    TextDelta("可以帮你？"),
    Usage(input_tokens=2, output_tokens=9),
    Finish("stop"),
]


def http_ask(model: str = "generalv3.5", *messages: Message, **kwargs: Any) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=messages or (Message("user", "你好"),),
        credentials=Credentials(api_key=PASSWORD),
        **kwargs,
    )


@respx.mock
async def test_http_answer_and_exact_request() -> None:
    route = respx.post(HTTP_URL).mock(return_value=sse(recorded("spark", "http_answer")))
    request = http_ask(
        "Spark Max",
        Message("system", "简洁地回答。"),
        Message("user", "你好"),
        params=SparkHTTP.clean_params({"temperature": 0.7, "top_k": 3, "presence_penalty": 1}),
    )

    assert await collect(SparkHTTP(), request) == HTTP_ANSWER

    sent = route.calls.last.request
    assert str(sent.url) == HTTP_URL
    assert sent.headers["authorization"] == f"Bearer {PASSWORD}"
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(sent) == {
        "model": "generalv3.5",
        "messages": [
            {"role": "system", "content": "简洁地回答。"},
            {"role": "user", "content": "你好"},
        ],
        "stream": True,
        "temperature": 0.7,
        "top_k": 3,
        "presence_penalty": 1.0,
    }


@respx.mock
async def test_http_tool_call_given_as_an_object() -> None:
    route = respx.post(HTTP_URL).mock(return_value=sse(recorded("spark", "http_tool_call")))

    events = await collect(SparkHTTP(), http_ask("4.0Ultra", tools=(WEATHER,)))

    assert events == [
        ToolCall("call_0", "get_weather", '{"location":"合肥"}'),
        Usage(input_tokens=96, output_tokens=13),
        Finish("tool_calls"),
    ]
    assert sent_json(route.calls.last.request)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]


@respx.mock
async def test_http_error_code_in_a_200_body() -> None:
    route = respx.post(HTTP_URL).mock(
        return_value=httpx.Response(
            200,
            content=recorded("spark", "http_error_body"),
            headers={"content-type": "application/json; charset=utf-8"},
        )
    )

    events = await collect(SparkHTTP(), http_ask())

    assert events == [
        Failure(
            ErrorKind.CONTENT_FILTER,
            "iFlytek Spark (HTTP) blocked the content (10013): "
            "输入内容审核不通过，涉嫌违规，请重新调整输入内容",
            permanent=True,
        )
    ]
    assert route.call_count == 1


def test_fixtures_are_one_frame_per_line() -> None:
    for path in Path(STREAMS / "spark").glob("*.jsonl"):
        for line in path.read_text("utf-8").splitlines():
            assert line.startswith('{"header":'), path.name


async def test_the_websocket_never_goes_through_a_proxy_named_in_the_environment(
    server: FakeSpark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LibreChat CVE-2026-31943 class: HTTPS_PROXY and the like would carry the signed URL
    (the key, encoded) to the proxy; the connection goes to the base URL only."""
    proxy = socket.create_server(("127.0.0.1", 0))
    proxy.setblocking(False)
    proxy_url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "WS_PROXY", "WSS_PROXY"):
        monkeypatch.setenv(name, proxy_url)
        monkeypatch.setenv(name.lower(), proxy_url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    server.plans = [Plan(frames("answer"))]

    try:
        assert await collect(spark(), ask(base_url=server.base_url)) == ANSWER
        with pytest.raises(BlockingIOError):
            proxy.accept()  # no connection ever came to the proxy
    finally:
        proxy.close()
