"""Soak and burst: tens of minutes of steady use, then a burst of Sends, on a stack of its own.

Starts what bench/streams.py starts (its ``Stack``: a redis-server, a SQLite database, the
fake OpenAI upstream of bench/upstream.py, ONE Celery worker as scripts/run.py starts it and
ONE daphne), with the fair-use limits at their defaults. Then:

- steady load for ``--minutes``: ``--people`` signed-in people, each in a loop of
  comparisons of four panes: a new comparison, then follow-ups, a few seconds of reading
  between turns; now and then a turn is stopped (Stop of the session), its socket dropped
  (the page reconnects and resumes from what it shows), or the page reloaded. Every pane's
  tokens are checked: none lost, none twice, in order.
- a burst: ``--burst`` Sends from ``--burst-people`` other people within a few seconds;
  how many were refused and with which sentences, and how long until every accepted
  answer had ended (drain).

Every 10 s it samples the worker's and daphne's RSS and open file descriptors, Redis's
used_memory and the database connections (SQLite: the processes' descriptors open on the
database file). The last line of stdout is a JSON summary: per measure first, last, max and
the slope per minute of the steady phase (least squares), and the burst's figures.

    .venv/bin/python bench/soak.py                 # 20 minutes (make soak)
    .venv/bin/python bench/soak.py --minutes 2     # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402

from bench.streams import (  # noqa: E402
    PASSWORD,
    STATUS_SEQ,
    STREAMING_TEXT,
    TOKEN,
    Browser,
    Comparison,
    Stack,
    log,
    rss_bytes,
)

SAMPLE_S = 10.0
PANES = 4
TURNS = 3  # per comparison: a new one, then follow-ups
REFUSAL = re.compile(r'<ul class="errors">(.*?)</ul>', re.S)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def fds_on(pid: int, path: Path) -> int:
    """Descriptors of ``pid`` open on ``path`` (a SQLite connection holds one)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    count += 1
    return count


class Samples:
    """One row every SAMPLE_S seconds, tagged with the phase it was taken in."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.rows: list[dict[str, Any]] = []
        self.phase = "steady"
        self.started = time.monotonic()
        self.redis = redis.Redis.from_url(stack.env["REDIS_URL"])

    def take(self) -> None:
        worker, web = self.stack.worker, self.stack.web
        assert worker is not None and web is not None
        info = self.redis.info("memory")
        self.rows.append(
            {
                "t_s": round(time.monotonic() - self.started, 1),
                "phase": self.phase,
                "worker_rss_mb": round(rss_bytes(worker.pid) / 2**20, 1),
                "daphne_rss_mb": round(rss_bytes(web.pid) / 2**20, 1),
                "worker_fds": open_fds(worker.pid),
                "daphne_fds": open_fds(web.pid),
                "redis_used_memory_mb": round(int(info["used_memory"]) / 2**20, 2),
                "db_connections": fds_on(worker.pid, self.stack.db_path)
                + fds_on(web.pid, self.stack.db_path),
            }
        )

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.take)
            await asyncio.sleep(SAMPLE_S)


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    if not den:
        return None
    return round(sum((x - mx) * (y - my) for x, y in points) / den * 60, 3)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    steady = [r for r in rows if r["phase"] == "steady"]
    # The first minute is the processes' warm-up (imports, caches, pools filling): the
    # slope is of what follows.
    settled = [r for r in steady if r["t_s"] >= 60] or steady
    out: dict[str, Any] = {}
    for name in rows[0]:
        if name in ("t_s", "phase"):
            continue
        values = [r[name] for r in rows]
        out[name] = {
            "first": values[0],
            "last": values[-1],
            "max": max(values),
            "steady_last": steady[-1][name] if steady else None,
            "slope_per_min": slope_per_minute([(r["t_s"], r[name]) for r in settled]),
        }
    return out


# ================================================================== steady load


class Tally:
    def __init__(self) -> None:
        self.turns = 0
        self.panes: Counter[str] = Counter()
        self.bad_panes: list[str] = []
        self.stops = self.drops = self.reloads = 0
        self.errors: list[str] = []


def check(comparison: Comparison, tally: Tally) -> None:
    """Every pane of the turn: its tokens 1..k, each once, in order; a finished one all."""
    for pane in comparison.current:
        tally.panes[pane.status or "unended"] += 1
        if pane.seqs != list(range(1, len(pane.seqs) + 1)):
            wrong = next(i for i, s in enumerate(pane.seqs, start=1) if s != i)
            tally.bad_panes.append(
                f"response {pane.rid} ({pane.status}): token {wrong} of {len(pane.seqs)} "
                f"is {pane.seqs[wrong - 1]}: {pane.seqs[max(0, wrong - 3) : wrong + 3]}"
            )
        elif pane.status == "done" and len(pane.seqs) != comparison.tokens:
            tally.bad_panes.append(f"response {pane.rid}: {len(pane.seqs)} tokens")


async def stop_session(comparison: Comparison) -> None:
    browser = comparison.browser
    path = f"/s/{comparison.session_id}/"
    await browser.client.post(
        f"{path}stop/",
        headers={"X-CSRFToken": browser.csrf, "HX-Request": "true", "Referer": browser.web + path},
    )


async def reload(comparison: Comparison) -> None:
    """The page is loaded again, and its socket opened again from what it shows.

    A browser replaces what it showed with the page; here the tokens already received are
    kept, and the page adds only those after them (re-adding the page's whole text would
    count every token shown so far twice)."""
    page = await comparison.browser.client.get(f"/s/{comparison.session_id}/")
    now = time.monotonic_ns()
    streaming = dict(STREAMING_TEXT.findall(page.content))
    for rid_raw, seq in STATUS_SEQ.findall(page.content):
        pane = comparison.by_rid.get(int(rid_raw))
        if pane is None or pane.status or rid_raw not in streaming:
            continue
        last = pane.seqs[-1] if pane.seqs else 0
        newer = b"".join(
            b" %s:%s" % token for token in TOKEN.findall(streaming[rid_raw]) if int(token[0]) > last
        )
        pane.tokens(newer, now)
        pane.seq = max(pane.seq, int(seq))
    if comparison.ws is not None:
        await comparison.ws.close()


async def person(
    browser: Browser, deadline: float, tally: Tally, rng: random.Random, tokens: int
) -> None:
    limit = tokens / 50 * 4 + 60
    while time.monotonic() < deadline:
        comparison = Comparison(browser, PANES, tokens, TURNS)
        try:
            for turn in range(TURNS):
                comparison.turn_no = turn
                comparison.current = []
                comparison.send_at, comparison.send_wall = time.monotonic_ns(), time.time()
                if turn == 0:
                    await comparison.new_comparison()
                else:
                    await comparison.follow_up()
                roll = rng.random()
                if roll < 0.1:
                    await asyncio.sleep(rng.uniform(0.5, 2))
                    await stop_session(comparison)
                    tally.stops += 1
                elif roll < 0.2:
                    await asyncio.sleep(rng.uniform(0.5, 2))
                    if comparison.ws is not None:
                        await comparison.ws.close()  # dropped: the page reconnects
                    tally.drops += 1
                elif roll < 0.3:
                    await asyncio.sleep(rng.uniform(0.5, 2))
                    await reload(comparison)
                    tally.reloads += 1
                await asyncio.wait_for(comparison.turn_ended(), limit)
                tally.turns += 1
                check(comparison, tally)
                await asyncio.sleep(rng.uniform(1, 4))  # reading the answers
        except (TimeoutError, RuntimeError, httpx.HTTPError, OSError) as error:
            tally.errors.append(f"{type(error).__name__}: {error}"[:200])
        finally:
            if comparison.error:
                tally.errors.append(comparison.error)
            await comparison.close()


# ================================================================== burst


async def burst(stack: Stack, people: list[str], sends: int, tokens: int) -> dict[str, Any]:
    browsers = [Browser(stack.web_url, 16, name) for name in people]
    await asyncio.gather(*(b.sign_in() for b in browsers))
    refusals: Counter[str] = Counter()
    accepted: list[int] = []
    failures: Counter[str] = Counter()

    async def one(browser: Browser, index: int) -> None:
        await asyncio.sleep(index * 3.0 / sends)  # all of them within three seconds
        form = browser.compose(2, tokens, f"Burst {index}")
        try:
            reply = await browser.send("/send/", "/", form)
        except httpx.HTTPError as error:
            failures[type(error).__name__] += 1
            return
        if reply.status_code == 200 and reply.headers.get("HX-Redirect"):
            accepted.append(int(reply.headers["HX-Redirect"].rstrip("/").rsplit("/", 1)[1]))
        elif refusal := REFUSAL.search(reply.text):
            for sentence in re.findall(r"<li>(.*?)</li>", refusal.group(1), re.S):
                refusals[html.unescape(" ".join(sentence.split()))] += 1
        else:
            failures[f"HTTP {reply.status_code}"] += 1

    started = time.monotonic()
    await asyncio.gather(*(one(browsers[i % len(browsers)], i) for i in range(sends)))
    sent_s = time.monotonic() - started
    drained_s = await asyncio.to_thread(wait_for_drain, stack.db_path, 600)
    for browser in browsers:
        await browser.close()
    return {
        "sends": sends,
        "people": len(people),
        "sent_within_s": round(sent_s, 1),
        "accepted": len(accepted),
        "refused": sum(refusals.values()),
        "refusals": dict(refusals.most_common()),
        "failed": dict(failures),
        "drained_s": None if drained_s is None else round(drained_s, 1),
    }


def wait_for_drain(db_path: Path, limit: float) -> float | None:
    """Seconds from now until no response is pending or streaming (None: not within limit)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as db:
            (active,) = db.execute(
                "SELECT COUNT(*) FROM playground_response WHERE status IN ('pending', 'streaming')"
            ).fetchone()
        if not active:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


# ================================================================== the run


def make_people(stack: Stack, names: list[str]) -> None:
    code = (
        "from django.contrib.auth.models import User\n"
        f"for name in {names!r}:\n"
        f"    User.objects.create_user(name, password={PASSWORD!r})\n"
    )
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT, env=stack.env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


async def soak(stack: Stack, opts: argparse.Namespace) -> dict[str, Any]:
    steady_names = [f"soak{i}" for i in range(opts.people)]
    burst_names = [f"burst{i}" for i in range(opts.burst_people)]
    await asyncio.to_thread(make_people, stack, steady_names + burst_names)
    samples = Samples(stack)
    sampler = asyncio.create_task(samples.run())
    tally = Tally()
    tokens = max(2, round(opts.rate * opts.seconds))
    browsers = [Browser(stack.web_url, 16, name) for name in steady_names]
    await asyncio.gather(*(b.sign_in() for b in browsers))
    deadline = time.monotonic() + opts.minutes * 60
    rng = random.Random(opts.seed)  # noqa: S311 - a load pattern, not a secret
    log(f"steady: {opts.people} people for {opts.minutes:g} min, answers of {tokens} tokens")
    await asyncio.gather(
        *(
            person(b, deadline, tally, random.Random(rng.random()), tokens)  # noqa: S311
            for b in browsers
        )
    )
    for browser in browsers:
        await browser.close()
    await asyncio.to_thread(samples.take)
    samples.phase = "burst"
    log(f"burst: {opts.burst} Sends from {opts.burst_people} people")
    bursted = await burst(stack, burst_names, opts.burst, max(2, round(opts.rate * 2)))
    samples.phase = "after"
    await asyncio.sleep(SAMPLE_S)
    await asyncio.to_thread(samples.take)
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    return {
        "minutes": opts.minutes,
        "people": opts.people,
        "steady": {
            "turns": tally.turns,
            "panes": dict(tally.panes),
            "panes_with_lost_or_doubled_tokens": len(tally.bad_panes),
            "examples": tally.bad_panes[:5],
            "stops": tally.stops,
            "socket_drops": tally.drops,
            "reloads": tally.reloads,
            "errors": tally.errors[:10],
            "error_count": len(tally.errors),
        },
        "burst": bursted,
        "resources": summarise(samples.rows),
        "samples": samples.rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="steady load (default 20)")
    parser.add_argument("--people", type=int, default=8, help="people under steady load")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s of every answer")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of every answer")
    parser.add_argument("--burst", type=int, default=200, help="Sends in the burst")
    parser.add_argument("--burst-people", type=int, default=20, help="people sending them")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--log-ttl", type=int, default=300, help="PLAYGROUND_LOG_TTL of the run (default 300 s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    opts = parser.parse_args()

    stack = Stack(opts.rate, opts.keep)
    try:
        stack.start()
        # Fair use as shipped: the burst meets the real limits.
        for name in ("PLAYGROUND_FAIR_CONCURRENT_TURNS", "PLAYGROUND_FAIR_SENDS_PER_MINUTE"):
            stack.env.pop(name, None)
        # Response logs live --log-ttl seconds after their answer (a day by default): the
        # soak shows Redis's memory level off once the first ones expire.
        stack.env["PLAYGROUND_LOG_TTL"] = str(opts.log_ttl)
        stack.start_app(64)  # scripts/run.py's worker concurrency
        result = asyncio.run(soak(stack, opts))
    finally:
        stack.stop()
    resources = result["resources"]
    print(f"soak: {opts.minutes:g} min, {opts.people} people; burst of {opts.burst} Sends")
    for name, figures in resources.items():
        print(f"  {name:22} {json.dumps(figures)}")
    print(f"  steady: {json.dumps(result['steady'])}")
    print(f"  burst: {json.dumps(result['burst'])}")
    print(json.dumps(result))
    steady = result["steady"]
    return 1 if steady["panes_with_lost_or_doubled_tokens"] or not steady["turns"] else 0


if __name__ == "__main__":
    sys.exit(main())
