"""Streaming benchmark: K comparisons of P panes through the whole stack, over websockets.

Starts its own redis-server (unless REDIS_URL is set), a SQLite database, ONE Celery worker
process and ONE daphne, as ``make run`` does, plus a fake OpenAI upstream (bench/upstream.py)
that writes tokens at a set rate, each stamped with its number and emit time. Clients sign
in over HTTP, open one session per comparison, keep its websocket open, and Send a
follow-up turn to all comparisons at once, as people would; every token that arrives on a
websocket is checked (numbered 1..N, once, in order) and timed. Beside the load, direct
httpx streams from the same upstream are the baseline, so what is reported is what the
playground adds. The last line printed is a JSON summary.

    .venv/bin/python bench/streams.py --scenario all        # (make bench)
    .venv/bin/python bench/streams.py --scenario light --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import free_port, start_redis  # noqa: E402

MODEL = "openai:gpt-4.1-mini"
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account in a throwaway database
TOKEN = re.compile(rb" (\d+):(\d+)")
DELTA = re.compile(rb'beforeend:#response-(\d+)-text">([^<]*)</div>')
ENDED = re.compile(rb'class="response status-(done|error|stopped|interrupted)" id="response-(\d+)"')
TICK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# ------------------------------------------------------------------ the stack


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    services: list[Any] = field(default_factory=list)
    web: str = ""
    worker_pid: int = 0

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for service in self.services:
            service.stop()


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on {port}")


def start_stack(rate: float, threads: int, flush_ms: int | None) -> Stack:
    tmp = Path(tempfile.mkdtemp(prefix="pg-bench-"))
    env = dict(os.environ)
    stack = Stack(tmp, env)
    if not env.get("REDIS_URL"):
        redis = start_redis(tmp / "redis")
        stack.services.append(redis)
        env["REDIS_URL"] = redis.url
    upstream_port = free_port()
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        PLAYGROUND_VAR_DIR=str(tmp),
        DEBUG="false",
        SECRET_KEY="bench-" + "x" * 40,
        LOG_LEVEL="WARNING",
        OPENAI_API_KEY="bench-key",
        PLAYGROUND_OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        PLAYGROUND_ENDPOINT_CONCURRENCY="1024",
        PLAYGROUND_LOCAL_MODEL_URL="",
        PYTHONUNBUFFERED="1",
    )
    if flush_ms is not None:
        env["PLAYGROUND_FLUSH_MS"] = str(flush_ms)
    try:
        py = sys.executable
        upstream = stack.spawn(
            "upstream",
            [
                py,
                str(ROOT / "bench/upstream.py"),
                "--port",
                str(upstream_port),
                "--rate",
                str(rate),
            ],
        )
        wait_port(upstream_port, upstream, "upstream")
        env["BENCH_UPSTREAM"] = f"http://127.0.0.1:{upstream_port}/v1"
        manage = [py, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        create = (
            "from django.contrib.auth.models import User;"
            f"User.objects.create_user('bench', password='{PASSWORD}')"
        )
        subprocess.run([*manage, "shell", "-c", create], cwd=ROOT, env=env, check=True)
        worker = stack.spawn(
            "worker",
            [py, "-m", "celery", "-A", "playground", "worker", "--pool", "threads",
             "--concurrency", str(threads), "--prefetch-multiplier", "1", "-l", "warning",
             "--without-mingle", "--without-gossip"],
        )  # fmt: skip
        stack.worker_pid = worker.pid
        port = free_port()
        web = stack.spawn(
            "daphne",
            [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "playground.asgi:application"],
        )  # fmt: skip
        wait_port(port, web, "daphne")
        stack.web = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while b"ready" not in (tmp / "worker.log").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the worker logs at WARNING: give it a moment after start
    except BaseException:
        stack.stop()
        raise
    return stack


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ clients


@dataclass
class Pane:
    started: float = 0.0  # when Send was pressed (monotonic ns / 1e9)
    sent_ms: float = 0.0  # how long the Send request took
    wall: float = 0.0  # time.time() at Send, to compare with the row's started_at
    first: float | None = None
    last: float | None = None
    seqs: list[int] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    status: str = ""


@dataclass
class Comparison:
    session_id: int
    socket: Any
    panes: dict[int, Pane] = field(default_factory=dict)  # every response seen, by id
    measured: set[int] = field(default_factory=set)  # the responses of the measured turn
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def nodelay() -> httpx.AsyncHTTPTransport:
    """A browser's connection: Nagle off (else each POST body waits on a delayed ACK)."""
    return httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        limits=httpx.Limits(max_connections=1000),
    )


async def sign_in(web: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        base_url=web, timeout=60, follow_redirects=False, transport=nodelay()
    )
    await client.get("/login/")
    token = client.cookies["csrftoken"]
    reply = await client.post(
        "/login/", data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    if reply.status_code != 302:
        raise RuntimeError(f"sign-in failed: {reply.status_code}")
    return client


def compose(panes: int, tokens: int, prompt: str) -> dict[str, Any]:
    form: dict[str, Any] = {"prompt": prompt, "pane": [str(i) for i in range(panes)]}
    for i in range(panes):
        form[f"pane-{i}-model"] = MODEL
        form[f"pane-{i}-p-max_tokens"] = str(tokens)
    return form


async def send(client: httpx.AsyncClient, path: str, form: dict[str, Any]) -> httpx.Response:
    headers = {"HX-Request": "true", "X-CSRFToken": client.cookies["csrftoken"]}
    reply = await client.post(path, data=form, headers=headers)
    if reply.status_code != 200 or b"<li>" in reply.content:
        raise RuntimeError(f"Send refused: {reply.status_code} {reply.text[:300]}")
    return reply


async def listen(comparison: Comparison) -> None:
    async for message in comparison.socket:
        now = time.monotonic_ns()
        data = message if isinstance(message, bytes) else message.encode()
        for rid_raw, text in DELTA.findall(data):
            pane = comparison.panes.setdefault(int(rid_raw), Pane())
            for seq, emitted in TOKEN.findall(text):
                pane.seqs.append(int(seq))
                pane.lag_ms.append((now - int(emitted)) / 1e6)
            if pane.first is None:
                pane.first = now / 1e9
            pane.last = now / 1e9
        for status, rid_raw in ENDED.findall(data):
            pane = comparison.panes.setdefault(int(rid_raw), Pane())
            pane.status = status.decode()
            # The finished answer replaces the streaming one: tokens of the last flush
            # arrive inside it rather than as a delta.
            newest = max(pane.seqs, default=0)
            start = data.index(b'id="response-' + rid_raw + b'"')
            article = data[start : data.index(b"</article>", start)]
            for seq, emitted in TOKEN.findall(article):
                if int(seq) > newest:
                    pane.seqs.append(int(seq))
                    pane.lag_ms.append((now - int(emitted)) / 1e6)
            pane.last = now / 1e9
        measured = comparison.measured
        if measured and all(comparison.panes.get(r, Pane()).status for r in measured):
            comparison.ready.set()


async def open_comparison(client: httpx.AsyncClient, web: str, panes: int) -> Comparison:
    reply = await send(client, "/send/", compose(panes, 1, "warm up"))
    session_id = int(reply.headers["HX-Redirect"].rstrip("/").split("/")[-1])
    ws_url = web.replace("http://", "ws://") + f"/ws/sessions/{session_id}/"
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    socket = await connect(
        ws_url, additional_headers={"Cookie": cookie, "Origin": web}, max_size=None
    )
    await socket.send(json.dumps({"type": "follow", "control": "0-0", "turn": 0, "responses": {}}))
    comparison = Comparison(session_id, socket)
    return comparison


async def direct_stream(
    client: httpx.AsyncClient, upstream: str, tokens: int
) -> tuple[float, list[float]]:
    """The baseline: one answer read straight from the upstream, on a warm client as the
    worker's is."""
    body = {"model": "bench", "stream": True, "max_tokens": tokens, "messages": []}
    lags: list[float] = []
    started = time.monotonic_ns()
    first = None
    async with client.stream("POST", f"{upstream}/chat/completions", json=body) as reply:
        async for chunk in reply.aiter_bytes():
            now = time.monotonic_ns()
            for _seq, emitted in TOKEN.findall(chunk):
                first = first or now
                lags.append((now - int(emitted)) / 1e6)
    return ((first or started) - started) / 1e6, lags


async def baseline(upstream: str, tokens: int, streams: int = 4) -> list[tuple[float, list[float]]]:
    async with httpx.AsyncClient(timeout=120, transport=nodelay()) as client:
        await asyncio.gather(*(direct_stream(client, upstream, 1) for _ in range(streams)))
        return await asyncio.gather(
            *(direct_stream(client, upstream, tokens) for _ in range(streams))
        )


@dataclass
class Result:
    name: str
    comparisons: int
    panes: int
    rate: float
    tokens: int
    numbers: dict[str, Any]


async def scenario(
    stack: Stack,
    name: str,
    comparisons: int,
    panes: int,
    rate: float,
    seconds: float,
    arrival: float = 0.0,
) -> Result:
    tokens = max(2, int(rate * seconds))
    upstream = stack.env["BENCH_UPSTREAM"]
    client = await sign_in(stack.web)
    try:
        opened = await asyncio.gather(
            *(open_comparison(client, stack.web, panes) for _ in range(comparisons))
        )
        listeners = [asyncio.create_task(listen(c)) for c in opened]
        await asyncio.sleep(1.0 + comparisons * 0.01)  # the warm-up turns end
        os.sched_yield()
        cpu_before = cpu_seconds(stack.worker_pid)
        rss_idle = rss_bytes(stack.worker_pid)
        rss_peak = rss_idle
        direct_task = asyncio.create_task(baseline(upstream, tokens))
        await asyncio.sleep(0.2)  # its warm-up request is done

        async def send_turn(comparison: Comparison) -> None:
            started, wall = time.monotonic_ns() / 1e9, time.time()
            reply = await send(
                client, f"/s/{comparison.session_id}/send/", compose(panes, tokens, "measure")
            )
            sent_ms = (time.monotonic_ns() / 1e9 - started) * 1000
            turn_id = int(reply.headers["X-Turn-Id"])
            ids = await response_ids(turn_id)
            for rid in ids:
                pane = comparison.panes.setdefault(rid, Pane())
                pane.started, pane.sent_ms, pane.wall = started, sent_ms, wall
            comparison.measured = set(ids)

        async def arrive(index: int, comparison: Comparison) -> None:
            # People do not all press Send in the same millisecond: arrivals are spread
            # evenly over ``arrival`` seconds (0: all at once).
            await asyncio.sleep(arrival * index / max(1, len(opened)))
            await send_turn(comparison)

        await asyncio.gather(*(arrive(i, c) for i, c in enumerate(opened)))
        deadline = time.monotonic() + seconds * 4 + 30
        while not all(c.ready.is_set() for c in opened) and time.monotonic() < deadline:
            rss_peak = max(rss_peak, rss_bytes(stack.worker_pid))
            await asyncio.sleep(0.25)
        cpu_used = cpu_seconds(stack.worker_pid) - cpu_before
        direct = await direct_task
        for task in listeners:
            task.cancel()
        for c in opened:
            await c.socket.close()
    finally:
        await client.aclose()

    base_ttft = statistics.median(t for t, _ in direct)
    base_lag = statistics.median(lag for _, lags in direct for lag in lags)
    all_panes = [c.panes.get(rid, Pane()) for c in opened for rid in c.measured]
    ttft = [(p.first - p.started) * 1000 - base_ttft for p in all_panes if p.first]
    lags = [lag - base_lag for p in all_panes for lag in p.lag_ms]
    lost = sum(max(0, tokens - len(set(p.seqs))) for p in all_panes)
    reordered = sum(
        1 for p in all_panes if p.seqs != sorted(p.seqs) or len(p.seqs) != len(set(p.seqs))
    )
    unfinished = sum(1 for p in all_panes if p.status != "done")
    for p in all_panes:
        if p.seqs != sorted(set(p.seqs)):
            at = next(i for i in range(1, len(p.seqs)) if p.seqs[i] <= p.seqs[i - 1])
            print(f"   out of order: ... {p.seqs[max(0, at - 5) : at + 5]} ...", file=sys.stderr)
            break
    wrong_rows = await rows_not_matching(opened, tokens)
    claims = await claim_delays(opened)
    events = sorted(
        [(p.first, 1) for p in all_panes if p.first] + [(p.last, -1) for p in all_panes if p.last]
    )
    held = peak = 0
    for _at, change in events:
        held += change
        peak = max(peak, held)
    streams = len(all_panes)
    numbers = {
        "streams": streams,
        "sends_spread_over_s": arrival,
        "tokens_per_stream": tokens,
        "added_ttft_ms_p50": round(pct(ttft, 50), 1),
        "added_ttft_ms_p99": round(pct(ttft, 99), 1),
        "added_delta_ms_p50": round(pct(lags, 50), 1),
        "added_delta_ms_p99": round(pct(lags, 99), 1),
        "send_request_ms_p50": round(pct([p.sent_ms for p in all_panes], 50), 1),
        "worker_claim_ms_p50": round(pct(claims, 50), 1),
        "baseline_ttft_ms": round(base_ttft, 2),
        "baseline_delta_ms": round(base_lag, 2),
        "held_at_once": peak,
        "worker_cpu_us_per_delta": round(cpu_used / max(1, streams * tokens) * 1e6, 1),
        "worker_cpu_s": round(cpu_used, 2),
        "memory_kb_per_stream": round((rss_peak - rss_idle) / 1024 / max(1, streams), 1),
        "lost": lost,
        "reordered": reordered,
        "unfinished": unfinished,
        "rows_not_matching": wrong_rows,
    }
    return Result(name, comparisons, panes, rate, tokens, numbers)


async def response_ids(turn_id: int) -> list[int]:
    from asgiref.sync import sync_to_async

    from playground.models import Response

    @sync_to_async
    def ids() -> list[int]:
        return list(Response.objects.filter(turn_id=turn_id).values_list("pk", flat=True))

    return await ids()


async def claim_delays(opened: list[Comparison]) -> list[float]:
    """Send pressed → the worker claimed the pane (its row's started_at)."""
    from asgiref.sync import sync_to_async

    from playground.models import Response

    sent = {rid: c.panes[rid].wall for c in opened for rid in c.measured if rid in c.panes}

    @sync_to_async
    def started() -> list[tuple[int, Any]]:
        return list(Response.objects.filter(pk__in=list(sent)).values_list("pk", "started_at"))

    return [(at.timestamp() - sent[pk]) * 1000 for pk, at in await started() if at]


async def rows_not_matching(opened: list[Comparison], tokens: int) -> int:
    """Final rows whose text is not exactly tokens 1..N (what the database kept)."""
    from asgiref.sync import sync_to_async

    from playground.models import Response

    ids = [rid for c in opened for rid in c.measured]

    @sync_to_async
    def texts() -> list[str]:
        return list(Response.objects.filter(pk__in=ids).values_list("text", flat=True))

    bad = 0
    for text in await texts():
        seqs = [int(s) for s, _ in TOKEN.findall(text.encode())]
        bad += seqs != list(range(1, tokens + 1))
    return bad


# ------------------------------------------------------------------ main


TARGETS = {
    "light": [
        ("added_ttft_ms_p50", 25),
        ("added_ttft_ms_p99", 80),
        ("added_delta_ms_p99", None),  # window + 60, filled in below
    ],
    "heavy": [
        ("added_delta_ms_p99", 300),
        ("added_ttft_ms_p99", 500),
        ("lost", 0),
        ("reordered", 0),
        ("unfinished", 0),
    ],
}


def verdicts(result: Result, window_ms: float) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    for metric, limit in TARGETS.get(result.name, []):
        bound = window_ms + 60 if limit is None else limit
        checks[f"{metric} <= {bound:g}"] = result.numbers[metric] <= bound
    if result.name == "heavy":
        checks["held_at_once >= 200"] = result.numbers["held_at_once"] >= 200
    return checks


def show(result: Result, checks: dict[str, bool]) -> None:
    print(
        f"\n== {result.name}: {result.comparisons} comparisons x {result.panes} panes, "
        f"{result.rate:g} tokens/s, {result.tokens} tokens each"
    )
    for key, value in result.numbers.items():
        print(f"   {key:28} {value}")
    for check, ok in checks.items():
        print(f"   {'PASS' if ok else 'FAIL'}  {check}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=["light", "heavy", "ramp", "all"], default="all")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s of each answer")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each answer")
    parser.add_argument("--ramp", default="200,300,400,600,800", help="stream counts to try")
    parser.add_argument("--flush-ms", type=int, default=None)
    parser.add_argument(
        "--arrival",
        type=float,
        default=2.5,
        help="seconds over which the Sends of heavy and ramp arrive (light: all at once)",
    )
    opts = parser.parse_args()

    wanted = ["light", "heavy", "ramp"] if opts.scenario == "all" else [opts.scenario]
    steps = [int(s) for s in opts.ramp.split(",") if s.strip()]
    most = max([50, *(s // 4 + 1 for s in steps)]) if "ramp" in wanted else 50
    stack = start_stack(opts.rate, threads=most + 8, flush_ms=opts.flush_ms)
    os.environ.update(
        {k: v for k, v in stack.env.items() if k in ("DATABASE_URL", "SECRET_KEY", "REDIS_URL")}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    os.environ["PLAYGROUND_VAR_DIR"] = str(stack.tmp)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()
    from django.conf import settings

    window = float(settings.PLAYGROUND_FLUSH_MS)
    summary: dict[str, Any] = {"flush_ms": window, "cores": os.cpu_count()}
    try:
        for name in wanted:
            if name == "ramp":
                crossed = None
                ramp: list[dict[str, Any]] = []
                for streams in steps:
                    result = asyncio.run(
                        scenario(
                            stack, "ramp", streams // 4, 4, opts.rate, opts.seconds, opts.arrival
                        )
                    )
                    show(result, {})
                    ramp.append(result.numbers)
                    if result.numbers["added_delta_ms_p99"] > 1000:
                        crossed = streams
                        break
                summary["ramp"] = ramp
                summary["delta_p99_passes_1s_at_streams"] = crossed
                continue
            comparisons = 2 if name == "light" else 50
            arrival = 0.0 if name == "light" else opts.arrival
            result = asyncio.run(
                scenario(stack, name, comparisons, 4, opts.rate, opts.seconds, arrival)
            )
            checks = verdicts(result, window)
            show(result, checks)
            summary[name] = {**result.numbers, "pass": all(checks.values())}
    finally:
        stack.stop()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
