"""Many people watching one shared session while it streams (issue 14's speed target).

Starts the stack bench/streams.py starts (its own redis-server, SQLite, fake upstream, ONE
Celery worker and ONE daphne), signs the owner in, starts a comparison of --panes panes,
makes a share link ("anyone with the link") for it, and has --viewers anonymous browsers
arrive over --spread seconds, load the shared page and follow it over the share link's
websocket while it streams. Every
token is checked (each viewer gets each pane's tokens 1..N, once) and timed: the moment a
viewer received it minus the moment the upstream wrote it, for the tokens written after
the viewer had joined (those written before reach it with the page or the replay, and
count for completeness). The owner's own page follows
the same session as the baseline of the same run.

    PYTHONPATH=. .venv/bin/python bench/viewers.py [--viewers 100] [--seconds 20]

Prints a table and a JSON line; the target is per-delta p99 < 300 ms for every viewer.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.streams import (  # noqa: E402
    USERNAME,
    Browser,
    Comparison,
    Stack,
    log,
    pct,
    r1,
)


class Viewer(Comparison):
    """An anonymous browser on /shared/<token>/: the page, then its websocket."""

    def __init__(self, browser: Browser, panes: int, tokens: int, token: str) -> None:
        super().__init__(browser, panes, tokens, 1)
        self.token = token
        self.joined = 0  # monotonic ns when its websocket asked to follow

    async def watch(self, limit: float, delay: float = 0.0) -> None:
        await asyncio.sleep(delay)
        try:
            page = await self.browser.client.get(f"/shared/{self.token}/")
            if page.status_code != 200:
                raise RuntimeError(f"GET /shared/ answered {page.status_code}")
            self.read_page(page.content, time.monotonic_ns())
            self.ws = await self.open_socket()
            self.reader = asyncio.create_task(self.read_socket())
            await asyncio.wait_for(self.turn_ended(), limit)
        except (TimeoutError, RuntimeError, OSError) as error:
            self.error = f"{type(error).__name__}: {error}"[:300]

    async def open_socket(self) -> ClientConnection:
        web = self.browser.web
        ws = await connect(
            web.replace("http://", "ws://", 1) + f"/ws/shared/{self.token}/",
            origin=web,  # type: ignore[arg-type]
            max_size=None,
            ping_interval=None,
            open_timeout=60,
        )
        await ws.send(self.follow_message())
        self.joined = self.joined or time.monotonic_ns()
        return ws


def share(stack: Stack, session_id: int) -> str:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    code = (
        "from django.contrib.auth.models import User; "
        "from playground.models import ShareLink; "
        f"ShareLink.objects.create(session_id={session_id}, token_hash={digest!r}, "
        f"audience='anyone', created_by=User.objects.get(username={USERNAME!r}))"
    )
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT,
        env=stack.env,
        check=True,
        capture_output=True,
    )
    return token


def lags(comparisons: list[Comparison], since: dict[int, int] | None = None) -> list[float]:
    """Receive minus emit of every token, in ms; with ``since`` (id(comparison) -> ns),
    only of the tokens written after that moment."""
    found = []
    for c in comparisons:
        start = (since or {}).get(id(c), 0)
        for p in c.by_rid.values():
            for lag, received in zip(p.lags, p.recv, strict=True):
                if received - lag * 1e6 >= start:
                    found.append(lag)
    return found


def complete(comparison: Comparison, tokens: int) -> bool:
    panes = list(comparison.by_rid.values())
    return bool(panes) and all(sorted(set(p.seqs)) == list(range(1, tokens + 1)) for p in panes)


async def drive(
    stack: Stack, viewers: int, panes: int, tokens: int, spread: float
) -> dict[str, Any]:
    owner = Browser(stack.web_url, 8)
    anonymous = Browser(stack.web_url, viewers + 8)
    limit = tokens / stack.rate * 4 + 60
    mine = Comparison(owner, panes, tokens, 1)
    watchers: list[Viewer] = []
    try:
        await owner.sign_in()
        warm = Comparison(owner, 1, 3, 1)
        await warm.run(60)
        await warm.close()
        mine.turn_no = 0
        mine.send_at = time.monotonic_ns()
        await mine.new_comparison()
        token = await asyncio.to_thread(share, stack, mine.session_id)
        watchers = [Viewer(anonymous, panes, tokens, token) for _ in range(viewers)]
        started = time.monotonic()
        await asyncio.gather(
            asyncio.wait_for(mine.turn_ended(), limit),
            *(v.watch(limit, spread * i / viewers) for i, v in enumerate(watchers)),
        )
        elapsed = time.monotonic() - started
    finally:
        await asyncio.gather(mine.close(), *(v.close() for v in watchers), return_exceptions=True)
        await owner.close()
        await anonymous.close()
    joined = {id(v): v.joined for v in watchers}
    seen = lags(watchers, joined)
    backlog = [
        sum(1 for p in v.by_rid.values() for lag, r in zip(p.lags, p.recv, strict=True)
            if r - lag * 1e6 < v.joined)
        for v in watchers
    ]  # fmt: skip
    return {
        "viewers": viewers,
        "arrivals_spread_s": spread,
        "panes": panes,
        "tokens": tokens,
        "seconds": round(elapsed, 1),
        "viewers_complete": sum(complete(v, tokens) for v in watchers),
        "viewer_errors": sorted({v.error for v in watchers if v.error})[:3],
        "viewer_deltas_live": len(seen),
        "tokens_before_joining_avg": r1(sum(backlog) / max(1, len(backlog))),
        "viewer_lag_p50_ms": r1(pct(seen, 50)),
        "viewer_lag_p99_ms": r1(pct(seen, 99)),
        "viewer_lag_max_ms": r1(max(seen, default=0.0)),
        "worst_viewer_p99_ms": r1(max((pct(lags([v], joined), 99) for v in watchers), default=0.0)),
        "owner_complete": complete(mine, tokens),
        "owner_lag_p50_ms": r1(pct(lags([mine]), 50)),
        "owner_lag_p99_ms": r1(pct(lags([mine]), 99)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--panes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of every answer")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s of every answer")
    parser.add_argument(
        "--spread",
        type=float,
        default=5.0,
        help="seconds over which the viewers arrive (0: all at once)",
    )
    opts = parser.parse_args()
    stack = Stack(opts.rate, keep=False)
    try:
        stack.start()
        stack.start_app(64)
        tokens = max(2, round(opts.rate * opts.seconds))
        log(f"{opts.viewers} viewers of one session of {opts.panes} panes x {tokens} tokens")
        numbers = asyncio.run(drive(stack, opts.viewers, opts.panes, tokens, opts.spread))
    finally:
        stack.stop()
    ok = numbers["viewers_complete"] == opts.viewers and (numbers["viewer_lag_p99_ms"] or 0) < 300
    for name, value in numbers.items():
        print(f"{name:>22}: {value}")
    print(f"{'target':>22}: every viewer complete, per-delta p99 < 300 ms: "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    print(json.dumps(numbers))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
