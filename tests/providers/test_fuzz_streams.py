"""Property-based fuzzing of every provider stream parser: the line reader (SSE's line ends
and NDJSON's), the SSE framing, each HTTP adapter's chunk-to-event mapping and tool-call
accumulator, and Spark's websocket frames.

Whatever bytes or JSON shapes a server sends, an adapter raises nothing but its own
:class:`ProviderError` (so :meth:`Provider.stream` never reports "a bug in the
playground"), ends within a moment, and never yields more than its request's bounds."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedOK

from providers import reading
from providers.base import (
    ChatRequest,
    Credentials,
    Event,
    Failure,
    Finish,
    Message,
    ProviderError,
    ReadLimits,
    ReasoningDelta,
    RetryPolicy,
    TextDelta,
    ToolCall,
    ToolCallBudget,
)
from providers.openai_compat import OpenAIChat, PendingToolCall
from providers.registry import PROVIDERS, provider_class
from providers.spark import Spark
from providers.sse import iter_sse_lines

LIMITS = ReadLimits(
    error_body_bytes=256,
    line_bytes=512,
    answer_chars=200,
    tool_call_chars=200,
    tool_calls=3,
    first_byte_seconds=1,
    stall_seconds=1,
)
FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
HTTP_PROVIDERS = sorted(set(PROVIDERS) - {"echo", "spark"})

# Where a provider's request needs more than a key to be sent at all.
BASE_URLS = {
    "openai_compatible": "http://fuzz.test/v1",
    "pangu": "https://pangu.cn-north-4.myhuaweicloud.com/v1/p/deployments/d",
}
EXTRA = {"region": "beijing"}

# --------------------------------------------------------------------------- strategies

# The field names the adapters read, so that arbitrary JSON reaches their deep paths.
FIELDS = [
    "choices", "delta", "content", "reasoning_content", "reasoning", "tool_calls", "index",
    "id", "function", "name", "arguments", "finish_reason", "usage", "prompt_tokens",
    "completion_tokens", "error", "message", "type", "text", "candidates", "parts",
    "finishReason", "functionCall", "args", "thought", "usageMetadata", "done", "done_reason",
    "thinking", "output", "code", "event", "stop_reason", "content_block", "input",
    "partial_json", "Choices", "Delta", "Content", "ToolCalls", "Function", "Arguments",
    "Index", "Id", "FinishReason", "Response", "Error", "result", "is_end", "function_call",
    "header", "payload", "status", "metrics", "metric", "value", "event_type",
]  # fmt: skip
WORDS = [
    *FIELDS, "stop", "length", "tool_calls", "text_delta", "input_json_delta", "tool_use",
    "content_block_delta", "content_block_start", "content_block_stop", "message_delta",
    "message_stop", "message_start", "error", "complete", "STOP", "",
]  # fmt: skip

scalars = st.none() | st.booleans() | st.integers(-5, 2**40) | st.sampled_from(WORDS)
scalars |= st.text(max_size=40) | st.floats(allow_nan=True, allow_infinity=True)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)


@st.composite
def sse_bodies(draw: st.DrawFn) -> bytes:
    """SSE events of arbitrary JSON (and now and then a bare line, a comment, [DONE])."""
    out = []
    for value in draw(st.lists(json_values, max_size=12)):
        event = draw(st.none() | st.sampled_from(WORDS))
        framing = draw(st.sampled_from(["sse", "sse", "bare", "comment", "done"]))
        data = json.dumps(value)
        if framing == "bare":
            out.append(data + "\n")
        elif framing == "comment":
            out.append(f": {data}\n\n")
        elif framing == "done":
            out.append("data: [DONE]\n\n")
        else:
            out.append((f"event: {event}\n" if event is not None else "") + f"data: {data}\n\n")
    return "".join(out).encode()


@st.composite
def ndjson_bodies(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(json_values, max_size=12))
    return "".join(json.dumps(v) + "\n" for v in lines).encode()


bodies = sse_bodies() | ndjson_bodies() | st.binary(max_size=1500)
content_types = st.sampled_from(
    ["text/event-stream", "application/x-ndjson", "application/json", "text/plain"]
)
statuses = st.sampled_from([200, 200, 200, 200, 400, 401, 429, 500, 503])


def in_pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut where ``cuts`` say (positions modulo its length), as reads arrive."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


class Body(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


# --------------------------------------------------------------------------- adapters


def request_for(name: str) -> ChatRequest:
    cls = provider_class(name)
    extra = {part: EXTRA.get(part, "x") for part in cls.extra_credentials}
    return ChatRequest(
        model="some-model",
        messages=[Message("user", "Hi")],
        credentials=Credentials(api_key="fuzz-key-1234567890", extra=extra),
        base_url=BASE_URLS.get(name, ""),
        limits=LIMITS,
    )


async def events_of(name: str, status: int, content_type: str, chunks: list[bytes]) -> list[Event]:
    provider = provider_class(name)()
    provider.retry_policy = RetryPolicy(attempts=1)  # type: ignore[misc]
    asked = []

    def answer(request: httpx.Request) -> httpx.Response:
        if re.search(r"token|oauth", request.url.path):  # an access-token exchange
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        asked.append(request)
        return httpx.Response(status, headers={"content-type": content_type}, stream=Body(chunks))

    async with asyncio.timeout(2), httpx.AsyncClient(transport=httpx.MockTransport(answer)) as c:
        events = [e async for e in provider.stream(c, request_for(name))]
    assert asked, "the fuzzed body was never asked for"
    return events


def check_bounds(events: list[Event]) -> None:
    """The stream's contract, and its bounds."""
    assert events and isinstance(events[-1], Finish | Failure)
    assert not any(isinstance(e, Finish | Failure) for e in events[:-1])
    last = events[-1]
    if isinstance(last, Failure):
        assert "bug in the playground" not in last.message, last.message
        assert "fuzz-key-1234567890" not in last.message
    chars = sum(len(e.text) for e in events if isinstance(e, TextDelta | ReasoningDelta))
    assert chars <= LIMITS.answer_chars
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert len(calls) <= LIMITS.tool_calls
    assert sum(len(c.name) + len(c.arguments) for c in calls) <= LIMITS.tool_call_chars


# Found by hand, kept as examples: a count of Infinity (Llama API's metrics), nesting deeper
# than Python's JSON parser goes.
@pytest.mark.parametrize("name", HTTP_PROVIDERS)
@FUZZ
@given(
    status=statuses,
    content_type=content_types,
    body=bodies,
    cuts=st.lists(st.integers(0, 10**4), max_size=8),
)
@example(
    200, "text/event-stream", b'data: {"metrics": [{"metric": "m", "value": Infinity}]}\n\n', []
)
@example(
    200,
    "text/event-stream",
    b'data: {"event": {"metrics": [{"metric": "m", "value": NaN}]}}\n\n',
    [],
)
@example(200, "application/x-ndjson", b"[" * 500 + b"\n", [7])
def test_an_adapter_reads_any_body_within_its_bounds(
    name: str, status: int, content_type: str, body: bytes, cuts: list[int]
) -> None:
    check_bounds(asyncio.run(events_of(name, status, content_type, in_pieces(body, cuts))))


def _data(value: Any, event: str = "") -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(value, ensure_ascii=False)}\n\n".encode()


# A piece of text in each framing.
TEXT_PIECE = {
    "openai": lambda t: _data({"choices": [{"delta": {"content": t}}]}),
    "anthropic": lambda t: _data(
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": t}},
        "content_block_delta",
    ),
    "gemini": lambda t: _data({"candidates": [{"content": {"parts": [{"text": t}]}}]}),
    "ollama_native": lambda t: (json.dumps({"message": {"content": t}}) + "\n").encode(),
    "qianfan_v1": lambda t: _data({"result": t}),
}


@pytest.mark.parametrize("name", sorted(TEXT_PIECE))
@FUZZ
@given(piece=st.text(min_size=1, max_size=60), count=st.integers(1, 30))
def test_an_answer_of_any_length_is_cut_at_the_bound(name: str, piece: str, count: int) -> None:
    """Many well-formed text pieces (each line within its bound: 60 characters of at most
    4 bytes): the text kept is the answer's start, never past it."""
    body = b"".join(TEXT_PIECE[name](piece) for _ in range(count))
    events = asyncio.run(events_of(name, 200, "text/event-stream", [body]))
    check_bounds(events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == (piece * count)[: LIMITS.answer_chars]


# --------------------------------------------------------------------------- lines


def reference_lines(data: bytes, newline_only: bool) -> list[str]:
    """How the whole body splits into lines, read at once."""
    if newline_only:
        parts = data.split(b"\n")
        lines = [p.removesuffix(b"\r") for p in parts[:-1]]
        last = parts[-1].removesuffix(b"\r")
    else:
        parts = re.split(rb"\r\n|\r|\n", data)
        lines, last = parts[:-1], parts[-1]
    return [x.decode("utf-8", "replace") for x in lines + ([last] if last else [])]


LINE_BYTES = [b"a", b"\r", b"\n", b"\xe2\x80\xa8", b"\xc3", b"\xa9", b"x" * 300]


@FUZZ
@given(
    data=st.binary(max_size=3000)
    | st.lists(st.sampled_from(LINE_BYTES), max_size=40).map(b"".join),
    cuts=st.lists(st.integers(0, 10**4), max_size=12),
    newline_only=st.booleans(),
)
def test_lines_are_the_same_however_the_body_is_cut(
    data: bytes, cuts: list[int], newline_only: bool
) -> None:
    async def read() -> list[str]:
        response = httpx.Response(200, stream=Body(in_pieces(data, cuts)))
        return [x async for x in reading.lines(response, LIMITS, "X", newline_only=newline_only)]

    expected = reference_lines(data, newline_only)
    if any(len(x.encode("utf-8", "surrogatepass")) > LIMITS.line_bytes for x in expected):
        # A line past the bound: refused, however it is cut (the check may come before the
        # line's end, never after).
        with pytest.raises(ProviderError, match="longer than 512 bytes"):
            asyncio.run(read())
        return
    try:
        assert asyncio.run(read()) == expected
    except ProviderError as error:
        # Undecodable bytes grow when replaced; only the raw bytes count.
        raw = re.split(rb"\n" if newline_only else rb"\r\n|\r|\n", data)
        assert any(len(x) > LIMITS.line_bytes for x in raw), error


@FUZZ
@given(lines=st.lists(st.text(max_size=80), max_size=40))
def test_sse_framing_never_holds_more_than_its_bound(lines: list[str]) -> None:
    async def source() -> AsyncIterator[str]:
        for line in lines:
            yield line

    async def read() -> list[Any]:
        return [e async for e in iter_sse_lines(source(), LIMITS, "X")]

    try:
        events = asyncio.run(read())
    except ProviderError as error:
        assert "longer than 512 bytes" in error.message
        return
    for event in events:
        assert len(event.data) <= LIMITS.line_bytes


# --------------------------------------------------------------------------- tool calls


fragments = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(-2, 50) | json_values,
        "id": st.text(max_size=8) | json_values,
        "function": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=20),
                "arguments": st.text(max_size=30).map(lambda t: t * 8),
            },
        )
        | json_values,
    },
)


@FUZZ
@given(fragments=st.lists(fragments | json_values, max_size=30))
@example([{"index": 0, "function": {"arguments": "x" * 150}}] * 2)
def test_the_tool_call_accumulator_stays_within_its_bounds(fragments: list[Any]) -> None:
    tools: dict[int, PendingToolCall] = {}
    budget = ToolCallBudget("X", LIMITS)
    try:
        for fragment in fragments:
            OpenAIChat.add_tool_fragment(tools, fragment, budget)
    except ProviderError as error:
        assert error.kind == "limit"
    assert len(tools) <= LIMITS.tool_calls
    assert sum(len("".join(p.arguments)) for p in tools.values()) <= LIMITS.tool_call_chars


# --------------------------------------------------------------------------- Spark


class Frames:
    """A websocket that delivers ``messages``, then closes."""

    def __init__(self, messages: list[str | bytes]) -> None:
        self.messages = list(messages)

    async def recv(self) -> str | bytes:
        if not self.messages:
            raise ConnectionClosedOK(None, None)
        return self.messages.pop(0)


spark_frames = st.lists(
    json_values.map(json.dumps)
    | st.fixed_dictionaries(
        {
            "header": st.fixed_dictionaries(
                {"code": st.integers(0, 3) | json_values, "status": st.integers(0, 2)}
            ),
            "payload": json_values,
        }
    ).map(json.dumps)
    | st.binary(max_size=200),
    max_size=10,
)


@FUZZ
@given(messages=spark_frames)
def test_spark_reads_any_frames_within_its_bounds(messages: list[str | bytes]) -> None:
    async def read() -> list[Event]:
        events: list[Event] = []
        async with asyncio.timeout(2):
            try:
                async for event in Spark().read_frames(Frames(messages), ("k",), LIMITS):  # type: ignore[arg-type]
                    events.append(event)
            except ProviderError as error:
                events.append(Failure(error.kind, error.message, error.permanent))
            except ConnectionClosedOK:
                pass  # open_stream reports a stream cut before its end
        return events

    events = asyncio.run(read())
    texts = sum(len(e.text) for e in events if isinstance(e, TextDelta | ReasoningDelta))
    # The adapter alone does not cut text (Provider.stream does); its tool calls it does.
    assert texts <= sum(len(m) for m in messages)
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert len(calls) <= LIMITS.tool_calls
    assert sum(len(c.arguments) for c in calls) <= LIMITS.tool_call_chars
