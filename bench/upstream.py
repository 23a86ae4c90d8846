"""A fake OpenAI Chat Completions server for bench/streams.py: tokens at a set rate.

``POST …/chat/completions`` with ``"stream": true`` answers Server-Sent Events the way
OpenAI does (a role chunk, one ``choices[0].delta.content`` chunk per token, a
``finish_reason`` chunk, a usage chunk, ``data: [DONE]``). The answer has
``max_completion_tokens`` (or ``max_tokens``) tokens. The first token is written as soon as
the request has been read, then one every 1/rate seconds. Every token is
`` <seq>:<emit ns>``: its number in the answer and ``time.monotonic_ns()`` when it was
written to the socket (CLOCK_MONOTONIC is system-wide on Linux, so the benchmark's client,
in another process, computes how late the token reached it).

One timer serves all streams (a heap of due times): a thousand streams cost one loop, not a
thousand sleeping tasks. Requests whose model is ``baseline`` are the benchmark's direct
calls; they are not counted in the statistics of what the playground's worker held:

``GET /stats`` → ``{"open", "peak", "served", "tokens", "refused", "connections"}``
(``connections``: TCP connections accepted; fewer than ``served`` when clients keep them
alive); ``POST /stats/reset`` sets ``peak`` to what is open now and the counters to zero.

    python bench/upstream.py --port 9100 --rate 50 [--key bench-key]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import signal
import sys
import time
from collections.abc import Iterator

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
PREFIX = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"%s",'
ROLE = '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}'
TOKEN = '"choices":[{"index":0,"delta":{"content":" %d:%d"},"finish_reason":null}]}'  # noqa: S105
STOP = '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE = '"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}'


def chunk(payload: str) -> bytes:
    """One HTTP/1.1 chunk holding one or more SSE events."""
    data = payload.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


class Answer:
    __slots__ = ("writer", "tokens", "sent", "prefix", "counted", "done", "prompt")

    def __init__(self, writer: asyncio.StreamWriter, tokens: int, model: str, prompt: int):
        self.writer = writer
        self.tokens = tokens
        self.sent = 0
        self.prefix = PREFIX % model.replace('"', "")
        self.counted = model != "baseline"
        self.done = asyncio.Event()
        self.prompt = prompt


class Upstream:
    def __init__(self, rate: float, key: str) -> None:
        self.period = 1.0 / rate
        self.key = key
        self.due: list[tuple[float, int, Answer]] = []
        self.order = itertools.count()
        self.wake = asyncio.Event()
        self.open = self.peak = self.served = self.tokens = self.refused = 0
        self.connections = 0

    # ------------------------------------------------------------------ the timer

    async def ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.due:
                self.wake.clear()
                await self.wake.wait()
                continue
            delay = self.due[0][0] - loop.time()
            if delay > 0.0005:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)
                continue
            horizon = loop.time() + 0.0005
            while self.due and self.due[0][0] <= horizon:
                at, _, answer = heapq.heappop(self.due)
                if self.write_next(answer):
                    heapq.heappush(self.due, (at + self.period, next(self.order), answer))

    def start(self, answer: Answer) -> None:
        loop = asyncio.get_running_loop()
        answer.writer.write(HEAD + chunk(f"data: {answer.prefix}{ROLE}\n\n"))
        if self.write_next(answer):
            heapq.heappush(self.due, (loop.time() + self.period, next(self.order), answer))
            self.wake.set()

    def write_next(self, answer: Answer) -> bool:
        """Write the answer's next token (and the end after the last); False when done."""
        writer = answer.writer
        if writer.is_closing():
            self.finish(answer)
            return False
        answer.sent += 1
        n = answer.sent
        events = f"data: {answer.prefix}{TOKEN % (n, time.monotonic_ns())}\n\n"
        last = n >= answer.tokens
        if last:
            total = answer.prompt + answer.tokens
            events += (
                f"data: {answer.prefix}{STOP}\n\n"
                f"data: {answer.prefix}{USAGE % (answer.prompt, answer.tokens, total)}\n\n"
                "data: [DONE]\n\n"
            )
        writer.write(chunk(events) + (b"0\r\n\r\n" if last else b""))
        if answer.counted:
            self.tokens += 1
        if last:
            self.finish(answer)
        return not last

    def finish(self, answer: Answer) -> None:
        if answer.done.is_set():
            return
        answer.done.set()
        if answer.counted:
            self.open -= 1

    # ------------------------------------------------------------------ HTTP

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError
        ):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                if path.endswith("/chat/completions") and method == "POST":
                    if not await self.completion(writer, headers, body):
                        break
                elif path == "/stats":
                    if method == "POST":
                        self.peak, self.served, self.tokens, self.refused = self.open, 0, 0, 0
                        self.connections = 0
                    self.reply(writer, 200, self.stats())
                else:
                    self.reply(writer, 404, {"error": {"message": "not found"}})
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def completion(
        self, writer: asyncio.StreamWriter, headers: dict[str, str], raw: bytes
    ) -> bool:
        if headers.get("authorization") != f"Bearer {self.key}":
            self.refused += 1
            self.reply(writer, 401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
            return True
        body = json.loads(raw or b"{}")
        tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 50)
        prompt = sum(len(str(m.get("content", ""))) // 4 + 1 for m in body.get("messages", []))
        answer = Answer(writer, max(1, tokens), str(body.get("model", "")), prompt)
        if answer.counted:
            self.open += 1
            self.served += 1
            self.peak = max(self.peak, self.open)
        self.start(answer)
        await answer.done.wait()
        await writer.drain()
        return not writer.is_closing()

    @staticmethod
    def reply(writer: asyncio.StreamWriter, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(data), data)
        )

    def stats(self) -> dict[str, int]:
        return {
            "open": self.open,
            "peak": self.peak,
            "served": self.served,
            "tokens": self.tokens,
            "refused": self.refused,
            "connections": self.connections,
        }


async def serve(port: int, rate: float, key: str) -> None:
    upstream = Upstream(rate, key)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)  # streams cut at shutdown are not news

    loop.set_exception_handler(quiet)
    ticker = asyncio.create_task(upstream.ticker())
    print(f"upstream on http://127.0.0.1:{port}/v1 at {rate:g} tokens/s", flush=True)
    async with server:
        await stop.wait()
    ticker.cancel()


@contextlib.contextmanager
def running(rate: float, key: str) -> Iterator[str]:
    """This server in a process of its own on a free loopback port, for a bench that calls
    it directly: yields its base URL once it accepts connections, and stops it after."""
    from scripts.children import DISCARD, free_port, start

    port = free_port()
    argv = [sys.executable, __file__, "--port", str(port), "--rate", f"{rate:g}", "--key", key]
    with start("bench/upstream.py", argv, log=DISCARD) as upstream:
        upstream.wait_for_port(port, timeout=10)
        yield f"http://127.0.0.1:{port}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second per answer")
    parser.add_argument("--key", default="bench-key", help="the API key it accepts")
    opts = parser.parse_args()
    asyncio.run(serve(opts.port, opts.rate, opts.key))


if __name__ == "__main__":
    main()
