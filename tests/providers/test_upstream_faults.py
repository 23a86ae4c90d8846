"""Upstream faults against a real server on loopback speaking each wire format (OpenAI-style
SSE, Anthropic's and Gemini's SSE, Ollama's NDJSON): a slow first byte, a server that never
answers, a stall mid-stream, 429 storms with Retry-After, 5xx, malformed chunks, an
oversized line, an oversized error body, an endless stream, and compressed bodies that
inflate without end. Each ends with the sentence a person reads in the pane, keeps what
arrived before the fault, closes the connection, and holds no more memory than its
bound."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import itertools
import re
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from providers.base import (
    ErrorKind,
    Event,
    Failure,
    Finish,
    ReadLimits,
    TextDelta,
)
from providers.registry import provider_class
from tests.providers.replay import KEY, FakeSleep, chat
from tests.providers.upstream import FOREVER, OPENAI, WIRES, Reply, Wire, bomb, serving

LIMITS = ReadLimits(
    error_body_bytes=1024,
    line_bytes=4096,
    answer_chars=10_000,
    first_byte_seconds=0.3,
    stall_seconds=0.3,
)
MB = 1024 * 1024

by_wire = pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.provider)


def name(wire: Wire) -> str:
    return provider_class(wire.provider).display_name


async def answer(
    wire: Wire,
    base_url: str,
    sleep: FakeSleep | None = None,
    limits: ReadLimits = LIMITS,
    peak: list[int] | None = None,
) -> list[Event]:
    """The answer's events; with ``peak``, the most memory the process held while it
    streamed (tracemalloc, the client made before: its TLS context is no answer's) is
    appended to it."""
    provider = provider_class(wire.provider)()
    request = dataclasses.replace(chat("some-model", key=KEY, base_url=base_url), limits=limits)
    async with asyncio.timeout(20), httpx.AsyncClient(timeout=10) as client:
        if peak is not None:
            tracemalloc.start()
        try:
            return [e async for e in provider.stream(client, request, sleep=sleep or FakeSleep())]
        finally:
            if peak is not None:
                peak.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()


def too_long(wire: Wire) -> Failure:
    """How an answer ends at the line bound, 4 KB."""
    return Failure(
        ErrorKind.UPSTREAM,
        f"{name(wire)} sent one piece of its answer longer than 4 KB, the most read here at "
        "once; the answer was stopped there and what had arrived is kept",
        True,
    )


def text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def megabytes_of(byte: bytes, count: int) -> Iterator[bytes]:
    """``count`` MB of ``byte``, in reads of 64 KB, without a line end."""
    return itertools.repeat(byte * 65536, 16 * count)


# --------------------------------------------------------------------------- time


@by_wire
async def test_a_first_byte_within_its_time_is_waited_for(wire: Wire) -> None:
    async with serving(wire.reply(wire.answer("Hello", " there"), delay=0.1)) as (up, url):
        events = await answer(wire, url)
    assert text(events) == "Hello there"
    assert isinstance(events[-1], Finish)


@by_wire
async def test_a_server_that_accepts_and_never_answers_is_waited_for_once_then_said(
    wire: Wire,
) -> None:
    sleep = FakeSleep()
    async with serving(wire.reply(wire.answer("late"), delay=FOREVER)) as (up, url):
        events = await answer(wire, url, sleep)
        assert await up.cut()  # the try's connection was closed
    assert events == [
        Failure(ErrorKind.TIMEOUT, f"{name(wire)} did not start answering within 0.3 s", False)
    ]
    assert up.requests == 1 and sleep.delays == []  # the wait is spent: no other try


@by_wire
async def test_the_tries_share_one_first_byte_wait(wire: Wire) -> None:
    # A server error after 0.2 s, then silence: the second try waits what the first left.
    late_error = dataclasses.replace(error_reply(503, "Overloaded"), delay=0.2)
    silent = wire.reply(wire.answer("late"), delay=FOREVER)
    sleep = FakeSleep()
    async with serving(late_error, silent) as (up, url):
        events = await answer(wire, url, sleep)
        assert await up.cut()
    (failure,) = events
    assert isinstance(failure, Failure) and failure.kind is ErrorKind.TIMEOUT
    assert re.fullmatch(
        rf"{re.escape(name(wire))} did not start answering within 0\.3 s in all"
        r" — retried 1 time over \d s",
        failure.message,
    )
    assert up.requests == 2


@by_wire
async def test_a_slow_error_then_an_answer_within_the_wait_left(wire: Wire) -> None:
    late_error = dataclasses.replace(error_reply(503, "Overloaded"), delay=0.1)
    async with serving(late_error, wire.reply(wire.answer("Hello"), delay=0.05)) as (up, url):
        events = await answer(wire, url)
    assert text(events) == "Hello"
    assert isinstance(events[-1], Finish)
    assert up.requests == 2


async def test_headers_then_silence_are_not_asked_for_again_past_the_wait() -> None:
    silent_body = OPENAI.reply([], hold=True)
    async with serving(silent_body) as (up, url):
        events = await answer(OPENAI, url)
        assert await up.cut()
    assert events == [
        Failure(
            ErrorKind.TIMEOUT,
            "OpenAI-compatible server sent nothing for 0.3 s, so the answer was stopped; what "
            "had arrived is kept",
            False,
        )
    ]
    assert up.requests == 1


@by_wire
async def test_a_stall_mid_stream_ends_the_answer_and_keeps_what_arrived(wire: Wire) -> None:
    stalls = wire.reply(wire.answer("Hello", " world", end=False), hold=True)
    async with serving(stalls) as (up, url):
        events = await answer(wire, url)
        assert await up.cut()
    assert text(events) == "Hello world"
    assert events[-1] == Failure(
        ErrorKind.TIMEOUT,
        f"{name(wire)} sent nothing for 0.3 s, so the answer was stopped; what had arrived is kept",
        False,
    )
    assert up.requests == 1  # an answer under way is not asked again


@by_wire
async def test_keep_alive_bytes_are_not_a_stall(wire: Wire) -> None:
    # Pieces 0.2 s apart, each within the 0.3 s a silence may last.
    slow = wire.reply(wire.answer("a", "b", "c", "d"), gap=0.2)
    async with serving(slow) as (up, url):
        events = await answer(wire, url)
    assert text(events) == "abcd"
    assert isinstance(events[-1], Finish)


# --------------------------------------------------------------------------- statuses


def error_reply(status: int, message: str, **headers: str) -> Reply:
    body = b'{"error": {"message": "%s"}}' % message.encode()
    return Reply(status, {"content-type": "application/json", **headers}, [body])


@by_wire
async def test_a_429_storm_waits_as_retry_after_says_and_ends_with_a_sentence(
    wire: Wire,
) -> None:
    sleep = FakeSleep()
    async with serving(error_reply(429, "Slow down", **{"retry-after": "2"})) as (up, url):
        events = await answer(wire, url, sleep)
    assert sleep.delays == [2.0, 2.0, 2.0]
    assert up.requests == 4
    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            f"Rate limited by {name(wire)} (429): Slow down — retried 3 times over 6 s",
            False,
            429,
        )
    ]


async def test_a_retry_after_of_a_day_is_waited_a_minute_at_most() -> None:
    sleep = FakeSleep()
    async with serving(error_reply(429, "Come back tomorrow", **{"retry-after": "86400"})) as (
        up,
        url,
    ):
        events = await answer(OPENAI, url, sleep)
    assert sleep.delays == [60.0, 60.0, 60.0]
    assert up.requests == 4
    assert isinstance(events[-1], Failure) and events[-1].status == 429


@by_wire
async def test_a_429_storm_that_clears_gives_the_answer(wire: Wire) -> None:
    sleep = FakeSleep()
    limited = error_reply(429, "Slow down", **{"retry-after": "1"})
    async with serving(limited, limited, wire.reply(wire.answer("At last"))) as (up, url):
        events = await answer(wire, url, sleep)
    assert text(events) == "At last"
    assert sleep.delays == [1.0, 1.0]


@by_wire
async def test_server_errors_are_tried_again_then_said(wire: Wire) -> None:
    async with serving(error_reply(503, "Overloaded"), wire.reply(wire.answer("Hi"))) as (up, url):
        assert text(await answer(wire, url)) == "Hi"
    sleep = FakeSleep()
    async with serving(error_reply(500, "Internal trouble")) as (up, url):
        events = await answer(wire, url, sleep)
    (failure,) = events
    assert isinstance(failure, Failure) and failure.status == 500
    assert failure.message.startswith(f"{name(wire)} had a server error (500): Internal trouble")
    assert failure.message.endswith(f" — retried 3 times over {sum(sleep.delays):.0f} s")
    assert up.requests == 4


@by_wire
async def test_an_oversized_error_body_is_read_only_up_to_its_bound(wire: Wire) -> None:
    huge = Reply(500, {"content-type": "text/plain"}, megabytes_of(b"e", 16))
    peak: list[int] = []
    async with serving(huge) as (up, url):
        events = await answer(wire, url, peak=peak)
        assert await up.cut()
    (failure,) = events
    assert isinstance(failure, Failure)
    assert failure.message.startswith(f"{name(wire)} had a server error (500): eeee")
    assert not any(up.finished)  # each body was left unread, its connection closed
    assert peak[0] < MB, peak  # 16 MB offered four times; 1 KB read each time


# --------------------------------------------------------------------------- bodies


def garbage(wire: Wire) -> list[bytes]:
    """Lines no reader understands: broken JSON, JSON that is not an object, bytes that
    are not UTF-8, JSON nested deeper than Python's parser goes."""
    lines = [b"{not json", b"[1, 2", b'"a string"', b"\xff\xfe\x00", b"[" * 3000]
    if wire.content_type == "text/event-stream":
        return [b"data: " + line + b"\n\n" for line in lines]
    return [line + b"\n" for line in lines]


@by_wire
async def test_malformed_chunks_are_skipped_and_the_answer_goes_on(wire: Wire) -> None:
    body = [wire.delta("Hel"), *garbage(wire), wire.delta("lo"), wire.end]
    async with serving(wire.reply(body)) as (up, url):
        events = await answer(wire, url)
    assert text(events) == "Hello"
    assert isinstance(events[-1], Finish)


@by_wire
async def test_an_oversized_line_ends_the_answer_and_keeps_what_arrived(wire: Wire) -> None:
    body = itertools.chain(wire.answer("Hello", end=False), megabytes_of(b"x", 16))
    peak: list[int] = []
    async with serving(wire.reply(body)) as (up, url):
        events = await answer(wire, url, peak=peak)
        assert await up.cut()
    assert text(events) == "Hello"
    assert events[-1] == too_long(wire)
    assert up.requests == 1 and not up.finished[0]
    assert peak[0] < MB, peak  # 16 MB offered in one line; 4 KB held


async def test_data_lines_without_an_end_of_event_are_bounded_too() -> None:
    endless_event = itertools.chain([OPENAI.delta("Hi")], itertools.repeat(b"data: 0123456789\n"))
    async with serving(OPENAI.reply(endless_event)) as (up, url):
        events = await answer(OPENAI, url)
        assert await up.cut()
    assert text(events) == "Hi"
    assert isinstance(events[-1], Failure)
    assert "longer than 4 KB" in events[-1].message


@by_wire
async def test_an_endless_stream_ends_at_the_longest_answer_and_keeps_it(wire: Wire) -> None:
    peak: list[int] = []
    async with serving(wire.reply(wire.endless("x" * 100))) as (up, url):
        events = await answer(wire, url, peak=peak)
        assert await up.cut()
    assert text(events) == "x" * 10_000
    assert events[-1] == Failure(
        ErrorKind.LIMIT,
        "The answer reached 10,000 characters, the most one answer may have here; it was "
        "stopped there and what had arrived is kept",
        True,
    )
    assert peak[0] < MB, peak  # an answer of 10,000 characters


# --------------------------------------------------------------------------- compression

ENCODINGS = ["gzip", "deflate", "raw deflate", "gzip, gzip"]


def compressed(reply: Reply, encoding: str) -> Reply:
    # The name on the wire: "raw deflate" is deflate without its zlib wrapper.
    named = encoding.replace("raw deflate", "deflate")
    return dataclasses.replace(reply, headers={**reply.headers, "content-encoding": named})


@pytest.mark.parametrize(
    ("wire", "encoding"),
    [(wire, "gzip") for wire in WIRES] + [(OPENAI, e) for e in ENCODINGS[1:]],
    ids=lambda v: v.provider if isinstance(v, Wire) else v,
)
async def test_a_compressed_stream_inflating_without_end_is_read_to_its_bound(
    wire: Wire, encoding: str
) -> None:
    # Each chunk the server sends inflates to 64 MB: a line of "x" without end.
    body = bomb(encoding, wire.delta("Hello"), b"x")
    peak: list[int] = []
    async with serving(compressed(wire.reply(body), encoding)) as (up, url):
        events = await answer(wire, url, peak=peak)
        assert await up.cut()
    assert text(events) == "Hello"
    assert events[-1] == too_long(wire)
    assert up.requests == 1
    assert peak[0] < MB, peak  # 64 MB in each chunk offered; 4 KB and a piece held


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_compressed_error_body_inflating_without_end_is_read_to_its_bound(
    encoding: str,
) -> None:
    body = bomb(encoding, b"", b"e")
    peak: list[int] = []
    async with serving(compressed(Reply(500, {"content-type": "text/plain"}, body), encoding)) as (
        up,
        url,
    ):
        events = await answer(OPENAI, url, peak=peak)
        assert await up.cut()
    (failure,) = events
    assert isinstance(failure, Failure)
    assert failure.message.startswith("OpenAI-compatible server had a server error (500): eeee")
    assert up.requests == 4 and not any(up.finished)
    assert peak[0] < MB, peak  # 1 KB read of each


@by_wire
async def test_calls_ask_for_the_answer_uncompressed_and_a_compressed_one_is_read(
    wire: Wire,
) -> None:
    # A server that compresses anyway, its gzip cut into small pieces across reads.
    whole = gzip.compress(b"".join(wire.answer("Hello", " there")))
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    async with serving(compressed(wire.reply(pieces), "gzip")) as (up, url):
        events = await answer(wire, url)
    assert up.headers[0]["accept-encoding"] == "identity"
    assert text(events) == "Hello there"
    assert isinstance(events[-1], Finish)


async def test_an_answer_compressed_in_a_way_not_read_here_is_said() -> None:
    brotli = compressed(OPENAI.reply([b"\x1b\x2f\x00\xf8\x25\x00\x00"]), "br")
    async with serving(brotli) as (up, url):
        events = await answer(OPENAI, url)
    assert events == [
        Failure(
            ErrorKind.UPSTREAM,
            "OpenAI-compatible server sent its answer compressed as br, which is not read here "
            "(it was asked for the answer uncompressed)",
            True,
        )
    ]
    assert up.requests == 1


async def test_a_broken_compressed_answer_is_said() -> None:
    broken = compressed(OPENAI.reply([b"data: not gzip at all\n\n"]), "gzip")
    async with serving(broken) as (up, url):
        events = await answer(OPENAI, url, FakeSleep())
    (failure,) = events
    assert isinstance(failure, Failure)
    assert failure.message.startswith(
        "OpenAI-compatible server sent a compressed answer that could not be decompressed"
    )
