"""What the worker's httpx clients cost per streamed line: one client for every call against
the leased clients of ``event_loop.HttpClients`` (at most 32 calls each), with httpx's
own sockets (anyio) and with the worker's (plain asyncio, ``playground/worker/sockets.py``).

One process streams S answers at once from bench/upstream.py (its own process, N tokens
each at 50 tokens/s), starting them 5 ms apart, for R rounds, on uvloop as the worker
does; the two set-ups alternate, run after run. httpcore's pool walks all of its
connections on every request and every close, and for each idle connection all of them
again, so with hundreds of connections in one pool each start and end of a call costs
milliseconds of the loop. Prints CPU per line and how late the loop ran a 1 ms timer
(p99, max) for each run, and a JSON summary as the last line.

    .venv/bin/python bench/http_clients.py [--streams 200] [--tokens 150] [--rounds 2] [--runs 2]
        [--setups "one client,leased anyio,leased asyncio"]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upstream import running  # noqa: E402  (bench/upstream.py)

KEY = "bench-key"
# One client with httpx's own sockets (what the worker had first); leased clients with
# httpx's own sockets; leased clients with the worker's sockets (what it has now).
SETUPS = ("one client", "leased anyio", "leased asyncio")


async def _answer(lease: Callable[[], AbstractContextManager[httpx.AsyncClient]], url: str,
                  tokens: int, lines: list[int]) -> None:  # fmt: skip
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
            "max_tokens": tokens}  # fmt: skip
    with lease() as client:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with client.stream("POST", url, json=body, headers=headers) as response:
            response.raise_for_status()
            async for _line in response.aiter_lines():
                lines[0] += 1


async def _run(setup: str, url: str, streams: int, tokens: int, rounds: int) -> dict[str, float]:
    from playground.worker.event_loop import HttpClients, _new_client
    from playground.worker.sockets import AsyncioTransport

    sockets = AsyncioTransport if setup.endswith("asyncio") else httpx.AsyncHTTPTransport
    clients = HttpClients(sockets)
    if setup == "one client":
        single = _new_client(httpx.AsyncHTTPTransport)
        # What the worker had: one pool for every call.
        pool = single._transport._pool  # type: ignore[attr-defined]
        pool._max_connections, pool._max_keepalive_connections = 1000, 200

        @contextlib.contextmanager
        def one() -> Iterator[httpx.AsyncClient]:
            yield single

        lease: Callable[[], AbstractContextManager[httpx.AsyncClient]] = one
    else:
        lease = clients.lease
    lines = [0]
    late: list[float] = []

    async def watch() -> None:  # how late the loop runs a 1 ms timer: what every pane waits
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.001)
            late.append((time.monotonic() - start - 0.001) * 1000)

    watcher = asyncio.create_task(watch())
    cpu, wall = time.process_time(), time.monotonic()
    for _ in range(rounds):
        tasks = []
        for _ in range(streams):
            tasks.append(asyncio.create_task(_answer(lease, url, tokens, lines)))
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    watcher.cancel()
    late.sort()
    if setup == "one client":
        await single.aclose()
    await clients.aclose()
    return {"lines": lines[0], "cpu_s": round(cpu, 2), "wall_s": round(wall, 1),
            "cpu_us_per_line": round(1e6 * cpu / lines[0], 1),
            "loop_late_ms_p99": round(late[int(len(late) * 0.99)], 1),
            "loop_late_ms_max": round(late[-1], 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    os.environ.update(DJANGO_SETTINGS_MODULE="playground.settings", DEBUG="false",
                      SECRET_KEY="bench-secret-" + "k" * 40,
                      PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=")  # noqa: E501  # fmt: skip
    import django

    django.setup()
    from playground.worker.event_loop import new_loop

    setups = [s.strip() for s in args.setups.split(",")]
    if unknown := set(setups) - set(SETUPS):
        parser.error(f"unknown setups {sorted(unknown)}; known: {', '.join(SETUPS)}")
    results: dict[str, list[dict[str, float]]] = {setup: [] for setup in setups}
    loop = new_loop()
    try:
        with running(rate=50, key=KEY) as base_url:
            url = f"{base_url}/chat/completions"
            for run in range(1, args.runs + 1):
                for setup in results:
                    numbers = loop.run_until_complete(
                        _run(setup, url, args.streams, args.tokens, args.rounds)
                    )
                    results[setup].append(numbers)
                    print(f"run {run}  {setup:14s} {numbers['cpu_us_per_line']:6.1f} µs per line  "
                          f"loop late p99 / max {numbers['loop_late_ms_p99']} / "
                          f"{numbers['loop_late_ms_max']} ms  "
                          f"(cpu {numbers['cpu_s']} s, wall {numbers['wall_s']} s, "
                          f"{numbers['lines']} lines)", flush=True)  # fmt: skip
    finally:
        loop.close()
    summary = {
        "streams": args.streams,
        "tokens": args.tokens,
        "rounds": args.rounds,
        **{
            f"{setup.replace(' ', '_')}_us_per_line_median": statistics.median(
                r["cpu_us_per_line"] for r in runs
            )
            for setup, runs in results.items()
        },
        "runs": results,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
