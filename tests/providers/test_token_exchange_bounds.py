"""The token exchanges (Qianfan v1's AK/SK for an access token, Pangu's IAM password for a
token) against a real token service on loopback that misbehaves: an answer without end,
one that inflates without end, one that trickles, one that never comes, an oversized
error. Each ends with a sentence naming the token service, holds no more memory than its
bound, closes the connection, and never says the secret."""

from __future__ import annotations

import asyncio
import itertools
import logging
import tracemalloc
from collections.abc import Iterable

import httpx
import pytest

from providers.base import (
    ChatRequest,
    Credentials,
    ErrorKind,
    Event,
    Failure,
    Message,
    Provider,
    ReadLimits,
)
from providers.pangu import IAMTokens, Pangu
from providers.qianfan import AccessTokens, QianfanV1
from providers.tokens import TokenAuth
from tests.providers.replay import FakeSleep
from tests.providers.upstream import FOREVER, Bomb, Reply, bomb, serving

LIMITS = ReadLimits(
    error_body_bytes=1024, line_bytes=4096, first_byte_seconds=0.3, stall_seconds=0.3
)
MB = 1024 * 1024

AK = "Mc1hYJ8sNo2kRsFpqLd7Ub3G"
SK = "p2K8aWm9cR4tYx6ZbN1qVe3LsD7fHj0Q"
PASSWORD = "S3cret!Pangu#2025"
SECRETS = (AK, SK, PASSWORD)


def qianfan(url: str) -> tuple[TokenAuth, ChatRequest]:
    request = ChatRequest(
        model="ernie-4.0-8k-latest",
        messages=[Message("user", "你好")],
        credentials=Credentials(api_key=AK, extra={"secret_key": SK}),
        base_url=url,
        limits=LIMITS,
    )
    return QianfanV1(tokens=AccessTokens()), request


def pangu(url: str) -> tuple[TokenAuth, ChatRequest]:
    iam = {
        "username": "playground-bot",
        "password": PASSWORD,
        "domain": "acme-cloud",
        "project": "cn-southwest-2",
        "iam_endpoint": url,  # a private cloud's own IAM: here, the loopback server
    }
    request = ChatRequest(
        model="pangu-nlp-n2-32k",
        messages=[Message("user", "你好")],
        credentials=Credentials(extra=iam),
        base_url=f"{url}/v1/0a1b2c3d4e5f60718293a4b5c6d7e8f9/deployments/d",
        limits=LIMITS,
    )
    return Pangu(tokens=IAMTokens()), request


ADAPTERS = pytest.mark.parametrize("adapter", [qianfan, pangu], ids=["qianfan_v1", "pangu"])
JSON = {"content-type": "application/json"}


async def answer(
    provider: Provider, request: ChatRequest, peak: list[int] | None = None
) -> list[Event]:
    async with asyncio.timeout(20), httpx.AsyncClient(timeout=10) as client:
        if peak is not None:
            tracemalloc.start()
        try:
            return [e async for e in provider.stream(client, request, sleep=FakeSleep())]
        finally:
            if peak is not None:
                peak.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()


def service(provider: TokenAuth) -> str:
    return {
        "qianfan_v1": "Baidu Qianfan (token exchange)",
        "pangu": "Huawei Cloud IAM (for Huawei Pangu)",
    }[provider.name]


def said_no_secret(events: list[Event], caplog: pytest.LogCaptureFixture) -> bool:
    said = " ".join(e.message for e in events if isinstance(e, Failure)) + caplog.text
    return not any(secret in said for secret in SECRETS)


def token_answers(body: Iterable[bytes], **kwargs: float) -> Reply:
    return Reply(200, dict(JSON), body, **kwargs)


@ADAPTERS
@pytest.mark.parametrize(
    "body",
    [
        itertools.chain([b'{"access_token": "'], itertools.repeat(b"a" * 65536)),
        bomb("gzip", b'{"access_token": "', b"a"),
    ],
    ids=["endless", "inflating without end"],
)
async def test_a_token_answer_past_the_bound_is_refused_with_a_sentence(
    adapter: object, body: Iterable[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = token_answers(body)
    if isinstance(body, Bomb):
        reply = Reply(200, {**JSON, "content-encoding": "gzip"}, body)
    peak: list[int] = []
    async with serving(reply) as (up, url):
        provider, request = adapter(url)  # type: ignore[operator]
        events = await answer(provider, request, peak)
        assert await up.cut()
    assert events == [
        Failure(
            ErrorKind.UPSTREAM,
            f"{service(provider)} answered with more than 4 KB, the most read here at once, "
            "so the model was not asked",
            True,
        )
    ]
    assert up.requests == 1 and not up.finished[0]  # not tried again; the chat never asked
    assert peak[0] < MB, peak
    assert said_no_secret(events, caplog)


@ADAPTERS
@pytest.mark.parametrize(
    "reply",
    [
        token_answers([b"{"], delay=FOREVER),
        token_answers(itertools.repeat(b" "), gap=0.05),
        token_answers([b'{"access_token": '], hold=True),
    ],
    ids=["silent", "trickling without end", "stalled"],
)
async def test_a_token_service_that_does_not_answer_in_time_is_said(
    adapter: object, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(reply) as (up, url):
        provider, request = adapter(url)  # type: ignore[operator]
        events = await answer(provider, request)
        assert await up.cut()
    assert events == [
        Failure(
            ErrorKind.TIMEOUT,
            f"{service(provider)} did not answer within 0.3 s, so the model was not asked",
            False,
        )
    ]
    assert up.requests == 1  # the first-byte wait is spent: the model is not asked
    assert said_no_secret(events, caplog)


@ADAPTERS
async def test_an_oversized_token_error_is_read_only_up_to_its_bound(
    adapter: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    huge = Reply(500, {"content-type": "text/plain"}, itertools.repeat(b"e" * 65536, 256))
    peak: list[int] = []
    async with serving(huge) as (up, url):
        provider, request = adapter(url)  # type: ignore[operator]
        events = await answer(provider, request, peak)
        assert await up.cut()
    (failure,) = events
    assert isinstance(failure, Failure)
    assert failure.message.startswith(f"{service(provider)} had a server error (500): eeee")
    assert up.requests == 4 and not any(up.finished)  # 16 MB offered each time
    assert peak[0] < MB, peak
    assert said_no_secret(events, caplog)


async def test_the_token_and_the_chat_share_the_first_byte_wait() -> None:
    # The token comes after 0.2 s, the chat's first byte 0.15 s after it is asked: within
    # a wait of its own it would have come, but the one wait, 0.3 s, is over first.
    token = token_answers([b'{"access_token": "t", "expires_in": 3600}'], delay=0.2)
    chat = Reply(body=[b'data: {"result": "Hi", "is_end": true}\n\n'], delay=0.15)
    async with serving(token, chat) as (up, url):
        provider, request = qianfan(url)
        events = await answer(provider, request)
    assert events == [
        Failure(ErrorKind.TIMEOUT, "Baidu Qianfan did not start answering within 0.3 s", False)
    ]
    assert up.requests == 2
