"""The shared Server-Sent Events reader."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from providers.sse import SSEEvent, iter_sse, iter_sse_lines


async def events_of(body: bytes, size: int = 7) -> list[SSEEvent]:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), size):
            yield body[i : i + size]

    response = httpx.Response(200, content=chunks())
    return [e async for e in iter_sse(response)]


async def test_data_with_and_without_space_after_the_colon() -> None:
    assert await events_of(b'data: {"a":1}\n\ndata:{"b":2}\n\n') == [
        SSEEvent("message", '{"a":1}'),
        SSEEvent("message", '{"b":2}'),
    ]


async def test_only_one_leading_space_is_removed() -> None:
    assert await events_of(b"data:  two spaces\n\n") == [SSEEvent("message", " two spaces")]


async def test_comment_lines_are_ignored() -> None:
    body = b": keep-alive\n\n:HTTP_STATUS/200\ndata: x\n\n: OPENROUTER PROCESSING\n\n"
    assert await events_of(body) == [SSEEvent("message", "x")]


async def test_crlf_and_lf_line_ends_alike() -> None:
    crlf = b"event: ping\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n"
    lf = crlf.replace(b"\r\n", b"\n")
    expected = [SSEEvent("ping", "{}"), SSEEvent("message", "[DONE]")]
    assert await events_of(crlf) == expected
    assert await events_of(lf) == expected
    # A CR LF pair split across two reads must not make an empty line.
    assert await events_of(crlf, size=1) == expected


async def test_multi_line_data_is_joined_with_newlines() -> None:
    assert await events_of(b"data: first\ndata: second\n\n") == [
        SSEEvent("message", "first\nsecond")
    ]


async def test_event_names_and_ids() -> None:
    body = b'id: 7\nevent: message_start\ndata: {}\n\nevent: error\ndata: {"x":1}\n\n'
    assert await events_of(body) == [
        SSEEvent("message_start", "{}", "7"),
        SSEEvent("error", '{"x":1}', "7"),
    ]


async def test_last_event_without_trailing_blank_line_is_kept() -> None:
    assert await events_of(b"data: a\n\ndata: b") == [
        SSEEvent("message", "a"),
        SSEEvent("message", "b"),
    ]


async def test_bare_json_line_outside_sse_framing_is_an_event() -> None:
    body = b'{"error_code":110,"error_msg":"Access token invalid or no longer valid"}\n'
    assert await events_of(body) == [
        SSEEvent(
            "message", '{"error_code":110,"error_msg":"Access token invalid or no longer valid"}'
        )
    ]


async def test_unknown_fields_are_ignored() -> None:
    assert await events_of(b"retry: 3000\nfoo: bar\ndata: x\n\n") == [SSEEvent("message", "x")]


async def test_iter_sse_lines_directly() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in ["data: one", "", "", "data: two", ""]:
            yield line

    assert [e.data async for e in iter_sse_lines(lines())] == ["one", "two"]
