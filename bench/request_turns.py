"""How many turns of a busy event loop a provider call waits before its first line.

Under load the worker's loop runs every ready pane's callbacks in each turn, so a pane that
is starting waits one whole turn at every step of its request (each await that is not
ready at once: a lock's checkpoint, a task group, a thread hop for DNS, a write, a read).
This script keeps a loop busy with a task that burns BURN ms of CPU per turn and times
calls through the worker's httpx clients (``event_loop.HttpClients``) to bench/upstream.py:
time to first line / BURN = turns waited. The first call opens a connection; the others
reuse it. Each set of sockets is measured, httpx's own (anyio) and the worker's (plain
asyncio, ``playground/worker/sockets.py``), after a call on another client has warmed up
the process (the first call's imports and set-up would otherwise count as turns). Both
use httpcore's pool and connection locks as the worker has them (asyncio's own, swapped in
when playground/worker/sockets.py is imported).

    .venv/bin/python bench/request_turns.py [--calls 5] [--burn-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upstream import running  # noqa: E402  (bench/upstream.py)

KEY = "bench-key"


async def _measure(url: str, calls: int, burn: float, sockets: str) -> list[float]:
    import httpx

    from playground.worker.event_loop import HttpClients
    from playground.worker.sockets import AsyncioTransport

    transport = AsyncioTransport if sockets == "asyncio" else httpx.AsyncHTTPTransport

    async def busy() -> None:
        while True:
            start = time.perf_counter()
            while time.perf_counter() - start < burn:
                pass
            await asyncio.sleep(0)

    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
            "max_tokens": 2}  # fmt: skip
    headers = {"Authorization": f"Bearer {KEY}"}
    warm = HttpClients(transport)
    with warm.lease() as client:
        (await client.post(url, json=body, headers=headers)).raise_for_status()
    await warm.aclose()
    clients = HttpClients(transport)
    spinner = asyncio.create_task(busy())
    await asyncio.sleep(0.05)
    turns = []
    try:
        for _ in range(calls):
            with clients.lease() as client:
                start = time.perf_counter()
                first = None
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    async for _line in response.aiter_lines():
                        first = first or time.perf_counter()
                turns.append(round(((first or start) - start) / burn, 1))
    finally:
        spinner.cancel()
        await clients.aclose()
    return turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--burn-ms", type=float, default=2.0)
    args = parser.parse_args()
    os.environ.update(DJANGO_SETTINGS_MODULE="playground.settings", DEBUG="false",
                      SECRET_KEY="bench-secret-" + "k" * 40,
                      PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=")  # noqa: E501  # fmt: skip
    import django

    django.setup()
    from playground.worker.event_loop import new_loop

    loop = new_loop()
    summary: dict[str, object] = {"burn_ms": args.burn_ms}
    print(f"turns of a busy loop ({args.burn_ms:g} ms each) before the first line:")
    try:
        with running(rate=1000, key=KEY) as base_url:
            url = f"{base_url}/chat/completions"
            for sockets in ("anyio", "asyncio"):
                turns = loop.run_until_complete(
                    _measure(url, args.calls, args.burn_ms / 1000, sockets)
                )
                print(f"  {sockets:7s} sockets: new connection {turns[0]}, "
                      f"kept-alive {', '.join(map(str, turns[1:]))}")  # fmt: skip
                summary[sockets] = {"new_connection": turns[0], "kept_alive": turns[1:]}
    finally:
        loop.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
