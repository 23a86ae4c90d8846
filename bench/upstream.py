"""A fake OpenAI Chat Completions server for the benchmark: it streams tokens at a set rate.

Every token is `` <seq>:<emit ns>`` — its number in the answer and the moment it was written
(``time.monotonic_ns()``, which is system-wide on Linux, so another process on this machine
can compute how late it arrived). One ticker serves all streams: every 1/rate seconds it
writes the next token of every open answer, so thousands of streams cost one loop, not
thousands of timers. The answer's length is the request's ``max_completion_tokens`` /
``max_tokens``.

    python bench/upstream.py --port 9100 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

CHUNK = (
    '{{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,'
    '"model":"bench","choices":[{{"index":0,"delta":{{"content":" {seq}:{ns}"}},'
    '"finish_reason":null}}]}}'
)


class Answer:
    def __init__(self, writer: asyncio.StreamWriter, tokens: int) -> None:
        self.writer = writer
        self.tokens = tokens
        self.sent = 0
        self.done = asyncio.Event()


class Upstream:
    def __init__(self, rate: float) -> None:
        self.period = 1 / rate
        self.answers: set[Answer] = set()
        self.served = 0

    async def tick(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += self.period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            for answer in list(self.answers):
                self.write_next(answer)

    def write_next(self, answer: Answer) -> None:
        writer = answer.writer
        if writer.is_closing():
            self.finish(answer)
            return
        answer.sent += 1
        chunk = CHUNK.format(seq=answer.sent, ns=time.monotonic_ns())
        frames = [f"data: {chunk}\n\n"]
        if answer.sent >= answer.tokens:
            stop = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                    "model": "bench", "choices": [{"index": 0, "delta": {},
                                                   "finish_reason": "stop"}]}  # fmt: skip
            usage = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                     "model": "bench", "choices": [],
                     "usage": {"prompt_tokens": 5, "completion_tokens": answer.tokens,
                               "total_tokens": answer.tokens + 5}}  # fmt: skip
            frames += [f"data: {json.dumps(stop)}\n\n", f"data: {json.dumps(usage)}\n\n"]
            frames.append("data: [DONE]\n\n")
        data = "".join(frames).encode()
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        if answer.sent >= answer.tokens:
            writer.write(b"0\r\n\r\n")
            self.finish(answer)

    def finish(self, answer: Answer) -> None:
        self.answers.discard(answer)
        answer.done.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length)) if length else {}
                tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 50)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
                )
                answer = Answer(writer, tokens)
                self.served += 1
                self.answers.add(answer)
                await answer.done.wait()
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def serve(port: int, rate: float) -> None:
    upstream = Upstream(rate)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, backlog=4096)
    ticker = asyncio.create_task(upstream.tick())
    print(f"upstream listening on 127.0.0.1:{port} at {rate:g} tokens/s", flush=True)
    async with server:
        await server.serve_forever()
    ticker.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=50.0)
    opts = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(opts.port, opts.rate))


if __name__ == "__main__":
    main()
