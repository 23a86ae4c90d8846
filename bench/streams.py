"""Streaming benchmark: K comparisons of P panes through the whole stack, as a browser does.

Starts everything itself on free loopback ports: a redis-server (scripts/services.py), a
SQLite database in a temporary directory (``manage.py migrate``), a fake OpenAI upstream
(bench/upstream.py, its own process) that writes tokens at a set rate, each stamped with its
number and the moment it was written, and for each scenario ONE Celery worker process
(started as scripts/run.py starts it: threads pool) and ONE daphne. The playground reaches
the upstream as model "openai:gpt-4.1-mini" through PLAYGROUND_OPENAI_BASE_URL.

Each comparison is one person's browser: it presses Send on a new comparison (the multipart
compose form, answered with HX-Redirect), loads the session page (tokens already in it count
as received then), opens the session's websocket, sends the follow message
static/playground/app.js sends, and reads the HTML fragments that arrive; when every pane has
ended it sends a follow-up turn on the same websocket. Every token is checked (1..N, once, in
order, per pane; the final article and the row in the database too) and timed: receive minus
emit. Direct httpx streams from the same upstream, in the same client loop, are the baseline:
what is reported is what the playground adds.

The comparisons' first Sends are spread over one answer's length (--spread), so that from
then on all of them stream at once and their later Sends arrive at a steady rate, as people
arrive. Latencies "at load" are those of tokens received while at least 90 % of the
scenario's streams were open, and of Sends made while the other comparisons were streaming;
the whole run (ramp-up and tail included) is reported beside them.

    .venv/bin/python bench/streams.py                      # light, heavy and the ramp
    .venv/bin/python bench/streams.py --scenario light --seconds 5
    .venv/bin/python bench/streams.py --quick              # a short check of everything

A readable table goes to stdout with PASS/FAIL per target of issue 2, and its last line is a
JSON summary; progress goes to stderr. Ctrl-C or SIGTERM stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from providers.registry import provider_class  # noqa: E402
from scripts.children import Child, free_port, start, stop_all  # noqa: E402
from scripts.services import start_redis  # noqa: E402

MODEL = "openai:gpt-4.1-mini"
API_KEY = "bench-key"
USERNAME = "bench"
# A site quota far above the load: every Send reserves its worst case on the person's
# counters, and every pane's end settles (the path a quota adds), without a refusal.
QUOTA = (
    "from playground.models import Quota; "
    "Quota.objects.create(scope='site', requests_per_day=10**9, tokens_per_month=10**15, "
    "spend_per_month=10**7)"
)
PASSWORD = "bench-password-" + "x" * 8  # noqa: S105 - a throw-away account in a throw-away db
PANES = 4
RUN_PY_CONCURRENCY = 64  # scripts/run.py --worker-concurrency default
BASELINE_LANES = 4
RAMP = "100,150,200,250,300,400,500,600,800"
QUICK_RAMP = "200,400"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# What the page's HTML and the websocket's fragments look like (templates/playground/).
TOKEN = re.compile(rb"(\d+):(\d{6,})")
DELTA = re.compile(rb'<div hx-swap-oob="beforeend:#response-(\d+)-text">([^<]*)</div>')
ARTICLE = re.compile(
    rb'<article class="response status-(\w+)" id="response-(\d+)" data-response="\d+"'
    rb'( hx-swap-oob="true")?( data-active="1")?'
)
STREAMING_TEXT = re.compile(rb'<div class="text streaming" id="response-(\d+)-text">([^<]*)</div>')
FINAL_TEXT = re.compile(rb'<div class="text markdown">(.*?)</div>', re.S)
STATUS_SEQ = re.compile(rb'id="response-(\d+)-status" data-seq="(\d+)"')
CONTROL = re.compile(rb'id="live-control"[^>]*? data-control="([^"]*)" data-turn="(\d+)"')
CSRF_HEADER = re.compile(rb"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'")
CSRF_FORM = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def code_version() -> str:
    """The commit measured, and whether the app's files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "playground", "providers",
             "templates", "static", "scripts"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); NaN when there is nothing."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def r1(value: float) -> float | None:
    return None if value != value else round(value, 1)  # NaN -> null in the JSON


# ================================================================== processes


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Stack:
    """Redis, the database and the fake upstream for the whole run; a worker and daphne per
    scenario (fresh processes, so that each scenario's memory and CPU are its own)."""

    def __init__(self, rate: float, keep: bool, profile: str = "") -> None:
        self.rate = rate
        self.keep = keep or bool(profile)
        self.profile = profile  # the py-spy executable, or ""
        self.profilers: list[Child] = []
        self.scenario = ""
        self.tmp = Path(tempfile.mkdtemp(prefix="playground-bench-"))
        self.db_path = self.tmp / "bench.sqlite3"
        self.redis: Child | None = None
        self.upstream: Child | None = None
        self.worker: Child | None = None
        self.web: Child | None = None
        self.web_url = ""
        self.upstream_url = ""
        self.concurrency = 0
        self.env: dict[str, str] = {}

    def start(self) -> None:
        log(f"work directory {self.tmp}")
        self.redis = start_redis(self.tmp / "redis")
        upstream_port = free_port()
        self.upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL"}
            and not k.startswith("PLAYGROUND_")
            or k in {"PLAYGROUND_FLUSH_MS", "PLAYGROUND_FLUSH_MAX_MS"}
        }
        env.update(
            REDIS_URL=self.redis.url,
            DATABASE_URL=f"sqlite:///{self.db_path}",
            PLAYGROUND_VAR_DIR=str(self.tmp),
            SECRET_KEY="bench-secret-" + "k" * 40,
            PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=",
            DEBUG="false",
            OPENAI_API_KEY=API_KEY,
            PLAYGROUND_OPENAI_BASE_URL=self.upstream_url,
            PLAYGROUND_ENDPOINT_CONCURRENCY="1024",
            PLAYGROUND_LOCAL_MODEL_URL="",
            # One person runs every comparison here: fair use set far above the load, so
            # its checks run on every Send without refusing any.
            PLAYGROUND_FAIR_CONCURRENT_TURNS="1000",
            PLAYGROUND_FAIR_SENDS_PER_MINUTE="100000",
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="playground.settings",
        )
        self.env = env
        log(f"redis {self.redis.url}")
        self.upstream = self.spawn(
            "upstream",
            [sys.executable, str(ROOT / "bench" / "upstream.py"), "--port", str(upstream_port),
             "--rate", f"{self.rate:g}", "--key", API_KEY],
        ).wait_for_port(upstream_port, timeout=60)  # fmt: skip
        log(f"fake upstream {self.upstream_url} at {self.rate:g} tokens/s")
        manage = [sys.executable, str(ROOT / "manage.py")]
        for argv in (
            [*manage, "migrate", "--no-input", "-v", "0"],
            [*manage, "shell", "-c",
             "from django.contrib.auth.models import User; "
             f"User.objects.create_user({USERNAME!r}, password={PASSWORD!r})"],
            [*manage, "shell", "-c", QUOTA],
        ):  # fmt: skip
            result = subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[1:3])} failed:\n{result.stderr[-2000:]}")
        log(f"SQLite database {self.db_path} migrated, user {USERNAME!r} created")

    def spawn(self, name: str, argv: list[str]) -> Child:
        """A process of the stack, its output in {name}.log in the work directory."""
        return start(
            name,
            argv,
            log=self.tmp / f"{name}.log",
            cwd=ROOT,
            env=self.env,
            death_signal=signal.SIGKILL,
        )

    def start_app(self, concurrency: int) -> None:
        """ONE Celery worker (as scripts/run.py starts it) and ONE daphne."""
        self.stop_app()
        self.concurrency = concurrency
        python = sys.executable
        self.worker = self.spawn(
            "worker",
            [python, "-m", "celery", "-A", "playground", "worker", "--pool", "threads",
             "--concurrency", str(concurrency), "--prefetch-multiplier", "1", "-l", "info",
             "--without-mingle", "--without-gossip"],
        )  # fmt: skip
        port = free_port()
        self.web = self.spawn(
            "daphne",
            [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "playground.asgi:application"],
        )  # fmt: skip
        self.web_url = f"http://127.0.0.1:{port}"
        self.web.wait_for_port(port, timeout=60)
        self.worker.wait_for_log(" ready.", timeout=60)

    def start_profiles(self) -> None:
        """py-spy on the worker and daphne for the measured part (--profile)."""
        if not self.profile:
            return
        for name, proc in (("worker", self.worker), ("daphne", self.web)):
            if proc is None:
                continue
            out = self.tmp / f"profile-{self.scenario}-{name}.txt"
            self.profilers.append(
                start(
                    "py-spy",
                    [
                        self.profile,
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--threads",
                        "--nonblocking",
                        "--output",
                        str(out),
                    ],
                    log=self.tmp / f"py-spy-{name}.log",
                    stop_signal=signal.SIGINT,  # py-spy writes its file on SIGINT
                    death_signal=signal.SIGKILL,
                )  # fmt: skip
            )
            log(f"py-spy profile of {name} -> {out}")

    def stop_profiles(self) -> None:
        stop_all(self.profilers, timeout=30)
        self.profilers = []

    def stop_app(self) -> None:
        self.stop_profiles()
        stop_all([self.worker, self.web], timeout=5)
        self.web = self.worker = None

    def stop(self) -> None:
        self.stop_app()
        stop_all([self.redis, self.upstream], timeout=5)
        self.upstream = self.redis = None
        if self.keep:
            log(f"logs and database kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        pids = {"client": os.getpid()}
        for name, proc in (("worker", self.worker), ("daphne", self.web)):
            if proc is not None:
                pids[name] = proc.pid
        if self.redis is not None:
            pids["redis"] = self.redis.pid
        if self.upstream is not None:
            pids["upstream"] = self.upstream.pid
        return pids

    def rows(self, ids: Iterable[int]) -> dict[int, tuple[str, str, float, int | None]]:
        """Final (status, text, started_at as a timestamp, ttft_ms) of responses, read
        straight from the SQLite file."""
        wanted = sorted(ids)
        found: dict[int, tuple[str, str, float, int | None]] = {}
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                query = (
                    "SELECT id, status, text, started_at, ttft_ms FROM playground_response "  # noqa: S608
                    f"WHERE id IN ({marks})"
                )
                for rid, status, text, started, ttft in db.execute(query, part):
                    at = (
                        datetime.fromisoformat(started).replace(tzinfo=UTC).timestamp()
                        if started
                        else 0.0
                    )
                    found[rid] = (status, text, at, ttft)
        return found


# ================================================================== the browser side


@dataclass(eq=False, slots=True)
class PaneTurn:
    """One pane's answer to one turn, as the client saw it."""

    rid: int
    turn: int  # 0 = the first Send of a new comparison, 1.. = follow-ups
    started: int  # monotonic ns when Send was pressed
    first: int = 0
    last: int = 0
    seq: int = 0  # the log sequence number the page has shown (data-seq)
    status: str = ""
    seqs: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # ms, receive - emit, per token
    recv: list[int] = field(default_factory=list)  # monotonic ns when each token arrived
    final_seqs: list[int] = field(default_factory=list)  # in the final article
    first_emit: int = 0  # when the upstream wrote token 1 (its stamp)
    wall: float = 0.0  # time.time() at Send, to compare with the row's started_at

    def final(self, html: bytes, now: int) -> None:
        """The final article: its text is the whole answer. Tokens that came only with it
        (the last flush travels with the end) count as received now."""
        self.final_seqs = [int(seq) for seq, _ in TOKEN.findall(html)]
        seen = set(self.seqs)
        for seq, emitted in TOKEN.findall(html):
            if seq == b"1" and not self.first_emit:
                self.first_emit = int(emitted)
            if int(seq) not in seen:
                self.seqs.append(int(seq))
                self.lags.append((now - int(emitted)) / 1e6)
                self.recv.append(now)
        if not self.first and self.seqs:
            self.first = now
        self.last = now

    def tokens(self, text: bytes, now: int) -> None:
        for seq, emitted in TOKEN.findall(text):
            self.seqs.append(int(seq))
            self.lags.append((now - int(emitted)) / 1e6)
            self.recv.append(now)
            if seq == b"1":
                self.first_emit = int(emitted)
        if not self.first and self.seqs:
            self.first = now
        self.last = now


NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class Browser:
    """One signed-in person; their comparisons share the session cookie, as tabs do."""

    def __init__(self, web: str, connections: int, username: str = USERNAME) -> None:
        self.web = web
        self.username = username
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = httpx.AsyncClient(
            base_url=web,
            timeout=httpx.Timeout(120),
            limits=limits,
            follow_redirects=False,
            # Browsers set TCP_NODELAY on their sockets; without it the multipart body of a
            # Send waits behind its headers for the server's delayed ACK (up to 40 ms).
            transport=httpx.AsyncHTTPTransport(limits=limits, socket_options=NODELAY),
        )
        self.csrf = ""
        self.params = [p.name for p in provider_class("openai").params]

    async def sign_in(self) -> None:
        page = await self.client.get("/login/")
        token = CSRF_FORM.search(page.content)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"GET /login/ answered {page.status_code}")
        reply = await self.client.post(
            "/login/",
            data={
                "csrfmiddlewaretoken": token.group(1).decode(),
                "username": self.username,
                "password": PASSWORD,
                "next": "",
            },
        )
        if reply.status_code != 302:
            raise RuntimeError(f"sign-in failed: {reply.status_code}")
        home = await self.client.get("/")
        header = CSRF_HEADER.search(home.content)
        if home.status_code != 200 or header is None:
            raise RuntimeError(f"GET / after sign-in answered {home.status_code}")
        self.csrf = header.group(1).decode()

    def compose(self, panes: int, tokens: int, prompt: str) -> list[tuple[str, str]]:
        """The compose form as htmx sends it with no image attached (urlencoded, see
        static/playground/app.js): every named field of the page, empty ones included."""
        data: list[tuple[str, str]] = []
        for i in range(panes):
            data.append(("pane", str(i)))
            data.append((f"pane-{i}-model", MODEL))
            for name in self.params:
                data.append((f"pane-{i}-p-{name}", str(tokens) if name == "max_tokens" else ""))
        data += [("system_prompt", ""), ("tools", ""), ("image_urls", ""), ("prompt", prompt)]
        return data

    async def send(self, path: str, current: str, form: list[tuple[str, str]]) -> Any:
        headers = {
            "HX-Request": "true",
            "HX-Current-URL": self.web + current,
            "HX-Trigger": "compose",
            "X-CSRFToken": self.csrf,
        }
        # One body in one write, as a browser sends it: encoded up front. (httpx streams a
        # multipart body part by part, and with TCP_NODELAY each part is a packet of its
        # own: that alone added 6 ms to every Send.)
        return await self.client.post(
            path,
            content=urlencode(form).encode(),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )

    async def close(self) -> None:
        await self.client.aclose()


class Comparison:
    """One browser tab: a new comparison, then follow-ups, over one websocket."""

    def __init__(self, browser: Browser, panes: int, tokens: int, turns: int) -> None:
        self.browser = browser
        self.panes = panes
        self.tokens = tokens
        self.turns = turns
        self.session_id = 0
        self.ws: ClientConnection | None = None
        self.control = "0-0"
        self.known_turn = 0
        self.by_rid: dict[int, PaneTurn] = {}
        self.current: list[PaneTurn] = []
        self.turn_no = 0
        self.send_at = 0
        self.send_wall = 0.0
        self.changed = asyncio.Event()
        self.reconnects = 0
        self.replies: dict[int, int] = {}  # Send pressed -> its POST answered (monotonic ns)
        self.unknown_deltas = 0
        self.reader: asyncio.Task[None] | None = None
        self.error = ""
        # Messages received on the current socket, and acknowledged (app.js does the same).
        self.received = 0
        self.acked = 0
        self.ack_timer: asyncio.TimerHandle | None = None

    # --------------------------------------------------------------- the person

    async def run(self, turn_limit: float) -> None:
        try:
            for turn in range(self.turns):
                self.turn_no = turn
                self.current = []
                self.send_at, self.send_wall = time.monotonic_ns(), time.time()
                if turn == 0:
                    await self.new_comparison()
                else:
                    await self.follow_up()
                await asyncio.wait_for(self.turn_ended(), turn_limit)
        except (TimeoutError, RuntimeError, httpx.HTTPError, OSError) as error:
            self.error = f"{type(error).__name__}: {error}"[:300]

    async def turn_ended(self) -> None:
        while not (len(self.current) == self.panes and all(p.status for p in self.current)):
            self.changed.clear()
            await self.changed.wait()

    async def new_comparison(self) -> None:
        form = self.browser.compose(self.panes, self.tokens, "Benchmark: count for me.")
        reply = await self.browser.send("/send/", "/", form)
        self.replies[self.send_at] = time.monotonic_ns()
        location = reply.headers.get("HX-Redirect")
        if reply.status_code != 200 or not location:
            raise RuntimeError(f"Send answered {reply.status_code}: {reply.text[:200]}")
        self.session_id = int(location.rstrip("/").rsplit("/", 1)[1])
        page = await self.browser.client.get(location)  # htmx: window.location = HX-Redirect
        now = time.monotonic_ns()
        if page.status_code != 200:
            raise RuntimeError(f"GET {location} answered {page.status_code}")
        self.read_page(page.content, now)
        self.ws = await self.open_socket()
        self.reader = asyncio.create_task(self.read_socket())

    async def follow_up(self) -> None:
        form = self.browser.compose(self.panes, self.tokens, "And once more, please.")
        path = f"/s/{self.session_id}/"
        reply = await self.browser.send(f"{path}send/", path, form)
        self.replies[self.send_at] = time.monotonic_ns()
        if reply.status_code != 200 or "X-Turn-Id" not in reply.headers or b"<li" in reply.content:
            raise RuntimeError(f"follow-up Send answered {reply.status_code}: {reply.text[:200]}")

    # --------------------------------------------------------------- the page

    def read_page(self, html: bytes, now: int) -> None:
        control = CONTROL.search(html)
        if control:
            self.control = control.group(1).decode()
            self.known_turn = int(control.group(2))
        streaming = dict(STREAMING_TEXT.findall(html))
        seqs = {int(rid): int(seq) for rid, seq in STATUS_SEQ.findall(html)}
        parts = html.split(b"<article ")[1:]
        for part in parts:
            found = ARTICLE.match(b"<article " + part)
            if found is None:
                continue
            status, rid_raw, _oob, active = found.groups()
            rid = int(rid_raw)
            pane = self.register(rid)
            if active:
                pane.seq = seqs.get(rid, 0)
                pane.tokens(streaming.get(rid_raw, b""), now)
            else:  # already over when the page was rendered
                final = FINAL_TEXT.search(part)
                pane.tokens(final.group(1) if final else b"", now)
                pane.status = status.decode()

    def register(self, rid: int) -> PaneTurn:
        pane = self.by_rid.get(rid)
        if pane is None:
            pane = PaneTurn(rid, self.turn_no, self.send_at, wall=self.send_wall)
            self.by_rid[rid] = pane
            self.current.append(pane)
        return pane

    def follow_message(self) -> str:
        """What app.js sends on every (re)connect."""
        responses = {str(p.rid): p.seq for p in self.by_rid.values() if not p.status}
        return json.dumps(
            {
                "type": "follow",
                "control": self.control,
                "turn": self.known_turn,
                "responses": responses,
            }
        )

    async def open_socket(self) -> ClientConnection:
        web = self.browser.web
        cookies = "; ".join(f"{k}={v}" for k, v in self.browser.client.cookies.items())
        ws = await connect(
            web.replace("http://", "ws://", 1) + f"/ws/sessions/{self.session_id}/",
            origin=web,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookies},
            max_size=None,
            ping_interval=None,  # browsers do not ping
            open_timeout=60,
        )
        await ws.send(self.follow_message())
        return ws

    def acknowledge(self, ws: ClientConnection) -> None:
        """app.js: acknowledge the messages received, at most every 100 ms."""
        if self.ack_timer is not None:
            return

        def send() -> None:
            self.ack_timer = None
            if self.received > self.acked and ws is self.ws:
                self.acked = self.received
                message = json.dumps({"type": "ack", "n": self.received})
                task = asyncio.ensure_future(ws.send(message))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

        self.ack_timer = asyncio.get_running_loop().call_later(0.1, send)

    async def read_socket(self) -> None:
        while True:
            assert self.ws is not None
            ws = self.ws
            self.received = self.acked = 0
            try:
                while True:
                    data = await ws.recv(decode=False)
                    self.on_message(data, time.monotonic_ns())
                    self.received += 1
                    self.acknowledge(ws)
            except ConnectionClosed as closed:
                if closed.rcvd is not None and closed.rcvd.code in (4403, 4404):
                    self.error = f"websocket closed {closed.rcvd.code}"
                    self.changed.set()
                    return
            # app.js: reconnect on any close and resume from what the page shows
            self.reconnects += 1
            await asyncio.sleep(0.5)
            with contextlib.suppress(OSError, TimeoutError):
                self.ws = await self.open_socket()

    def on_message(self, data: bytes, now: int) -> None:
        if b"live-control" in data:
            control = CONTROL.search(data)
            if control:
                self.control = control.group(1).decode()
                self.known_turn = int(control.group(2))
        for status, rid_raw, oob, _active in ARTICLE.findall(data):
            rid = int(rid_raw)
            if oob:  # the final article replaces the streaming one, with the whole text
                pane = self.by_rid.get(rid)
                if pane is not None:
                    pane.status = status.decode()
                    final = FINAL_TEXT.search(data)
                    pane.final(final.group(1) if final else b"", now)
            else:  # a new turn's article, added to its pane's history
                self.register(rid)
        for rid_raw, text in DELTA.findall(data):
            pane = self.by_rid.get(int(rid_raw))
            if pane is None:
                self.unknown_deltas += 1
                continue
            pane.tokens(text, now)
        for rid_raw, seq in STATUS_SEQ.findall(data):
            pane = self.by_rid.get(int(rid_raw))
            if pane is not None:
                pane.seq = max(pane.seq, int(seq))
        self.changed.set()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


@dataclass
class Direct:
    """The baseline: answers read straight from the upstream by httpx, in the same loop."""

    ttft: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    answers: int = 0


async def direct_lane(upstream: str, tokens: int, out: Direct) -> None:
    body = {"model": "baseline", "stream": True, "max_completion_tokens": tokens, "messages": []}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    # The same socket options as the worker's client (playground/worker/event_loop.py).
    transport = httpx.AsyncHTTPTransport(socket_options=NODELAY)
    async with httpx.AsyncClient(timeout=120, transport=transport) as client:
        while True:
            started = time.monotonic_ns()
            first = True
            async with client.stream(
                "POST", f"{upstream}/chat/completions", json=body, headers=headers
            ) as reply:
                async for chunk in reply.aiter_bytes():
                    now = time.monotonic_ns()
                    for _seq, emitted in TOKEN.findall(chunk):
                        if first:
                            out.ttft.append((now - started) / 1e6)
                            first = False
                        out.lags.append((now - int(emitted)) / 1e6)
            out.answers += 1


# ================================================================== one scenario


@dataclass
class Spec:
    name: str
    comparisons: int
    panes: int
    turns: int
    tokens: int
    spread: float  # seconds over which the comparisons' first Sends are spread


class Sampler:
    """CPU of every process, the machine's busy share, the worker's RSS and the client
    loop's lateness, while a scenario runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.rss_peak = 0
        self.loop_late: list[float] = []
        self.start_ticks: dict[str, int] = {}
        self.start_machine = (0, 0)
        self.started = 0.0
        self.cpu: dict[str, float] = {}
        self.machine_busy = 0.0
        self.elapsed = 0.0

    def begin(self) -> None:
        self.start_ticks = {name: cpu_ticks(pid) for name, pid in self.pids.items()}
        self.start_machine = machine_ticks()
        self.started = time.monotonic()

    def end(self) -> None:
        self.elapsed = time.monotonic() - self.started
        self.cpu = {
            name: (cpu_ticks(pid) - self.start_ticks[name]) / TICK
            for name, pid in self.pids.items()
        }
        busy, total = machine_ticks()
        spent = total - self.start_machine[1]
        self.machine_busy = (busy - self.start_machine[0]) / spent if spent else 0.0

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        worker = self.pids["worker"]
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            self.loop_late.append((loop.time() - before - 0.05) * 1000)
            self.rss_peak = max(self.rss_peak, rss_bytes(worker))


async def drive(stack: Stack, spec: Spec, turn_limit: float) -> dict[str, Any]:
    browser = Browser(stack.web_url, spec.comparisons + 8)
    comparisons: list[Comparison] = []
    direct = Direct()
    lanes: list[asyncio.Task[None]] = []
    watcher: asyncio.Task[None] | None = None
    async with httpx.AsyncClient(base_url=stack.upstream_url.rsplit("/v1", 1)[0]) as up:
        try:
            await browser.sign_in()
            # Warm-up: the worker's loop, clients and connections exist before the measure.
            warm = Comparison(browser, 1, 3, 1)
            await warm.run(60)
            await warm.close()
            if warm.error:
                raise RuntimeError(f"warm-up comparison failed: {warm.error}")
            await asyncio.sleep(0.5)
            assert stack.worker is not None
            rss_idle = rss_bytes(stack.worker.pid)
            await up.post("/stats")
            sampler = Sampler(stack.pids())
            sampler.rss_peak = rss_idle
            stack.start_profiles()
            sampler.begin()
            watcher = asyncio.create_task(sampler.watch())
            lanes = [
                asyncio.create_task(direct_lane(stack.upstream_url, spec.tokens, direct))
                for _ in range(BASELINE_LANES)
            ]

            async def person(index: int) -> Comparison:
                if spec.spread > 0:
                    await asyncio.sleep(spec.spread * index / spec.comparisons)
                comparison = Comparison(browser, spec.panes, spec.tokens, spec.turns)
                comparisons.append(comparison)
                await comparison.run(turn_limit)
                return comparison

            await asyncio.gather(*(person(i) for i in range(spec.comparisons)))
            sampler.end()
            stack.stop_profiles()
            stats = (await up.get("/stats")).json()
        finally:
            for task in [*lanes, *([watcher] if watcher else [])]:
                task.cancel()
            await asyncio.gather(*lanes, *([watcher] if watcher else []), return_exceptions=True)
            await asyncio.gather(*(c.close() for c in comparisons), return_exceptions=True)
            await browser.close()
    return {
        "comparisons": comparisons,
        "direct": direct,
        "sampler": sampler,
        "rss_idle": rss_idle,
        "upstream": stats,
    }


class Timeline:
    """How many streams were open at any moment, from their (start, end) times."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        self.times: list[int] = []
        self.open: list[int] = []
        count = 0
        for at, step in events:
            count += step
            self.times.append(at)
            self.open.append(count)

    def at(self, moment: int) -> int:
        i = bisect.bisect_right(self.times, moment)
        return self.open[i - 1] if i else 0

    def peak(self) -> int:
        return max(self.open, default=0)

    def spans(self, least: float) -> list[tuple[int, int]]:
        """The stretches of time when at least ``least`` streams were open."""
        out: list[tuple[int, int]] = []
        begin: int | None = None
        for at, count in zip(self.times, self.open, strict=True):
            if count >= least and begin is None:
                begin = at
            elif count < least and begin is not None:
                out.append((begin, at))
                begin = None
        return out

    @staticmethod
    def inside(spans: list[tuple[int, int]], moment: int) -> bool:
        i = bisect.bisect_right(spans, (moment, 2**63))
        return bool(i) and spans[i - 1][0] <= moment <= spans[i - 1][1]


def analyse(stack: Stack, spec: Spec, run: dict[str, Any], window_ms: float) -> dict[str, Any]:
    comparisons: list[Comparison] = run["comparisons"]
    direct: Direct = run["direct"]
    sampler: Sampler = run["sampler"]
    panes = [p for c in comparisons for p in c.by_rid.values()]
    expected = spec.comparisons * spec.panes * spec.turns
    n = spec.tokens
    want = list(range(1, n + 1))
    rows = stack.rows(p.rid for p in panes)

    lost = doubled = out_of_order = unfinished = rows_wrong = finals_wrong = 0
    problems: list[str] = []
    for p in panes:
        seen = set(p.seqs)
        missing = [s for s in want if s not in seen]
        lost += len(missing)
        if missing or len(seen) != len(p.seqs) or p.status != "done":
            problems.append(
                f"response {p.rid} (turn {p.turn}): {len(p.seqs)} tokens, missing "
                f"{missing[:8]}{'…' if len(missing) > 8 else ''}, status {p.status or 'none'}"
            )
        doubled += len(p.seqs) - len(seen)
        out_of_order += sum(1 for a, b in zip(p.seqs, p.seqs[1:], strict=False) if b < a)
        unfinished += p.status != "done"
        status, text, _at, _ttft = rows.get(p.rid, ("missing", "", 0.0, None))
        rows_wrong += status != "done" or [int(s) for s, _ in TOKEN.findall(text.encode())] != want
        finals_wrong += p.final_seqs != want
    missing_panes = expected - len(panes)
    lost += missing_panes * n
    unfinished += missing_panes

    # "At load": the stretches of time when at least 90 % of the scenario's streams were
    # open (as the browsers saw them: first to last token), the Sends made while the other
    # comparisons' streams were open, and the tokens received then. The ramp-up and the
    # tail of a run are left out of these, so the numbers are those of the load asked for.
    target = spec.comparisons * spec.panes
    load = Timeline([(p.first, p.last) for p in panes if p.first and p.last])
    busy = 0.9 * target
    base_ttft = pct(direct.ttft, 50)
    ttft_all = [(p.first - p.started) / 1e6 for p in panes if p.first]
    at_load = [p for p in panes if p.first and load.at(p.started) >= busy - spec.panes]
    ttft = [(p.first - p.started) / 1e6 for p in at_load]
    ttft_first = [(p.first - p.started) / 1e6 for p in at_load if p.turn == 0]
    ttft_next = [(p.first - p.started) / 1e6 for p in at_load if p.turn > 0]
    lags_all = [lag for p in panes for lag in p.lags]
    windows = load.spans(busy)
    lags = [
        lag
        for p in panes
        for lag, at in zip(p.lags, p.recv, strict=True)
        if Timeline.inside(windows, at)
    ]
    # Where the time to first token goes: Send -> the worker claims the row (its
    # started_at), Send -> the upstream writes token 1 (its stamp), token 1 -> the browser.
    replies = {at: done for c in comparisons for at, done in c.replies.items()}
    send_ms = [(replies[p.started] - p.started) / 1e6 for p in at_load if p.started in replies]
    claim = [
        (rows[p.rid][2] - p.wall) * 1000
        for p in at_load
        if rows.get(p.rid, ("",))[0] and rows[p.rid][2]
    ]
    to_upstream = [(p.first_emit - p.started) / 1e6 for p in at_load if p.first_emit]
    delivery = [(p.first - p.first_emit) / 1e6 for p in at_load if p.first and p.first_emit]
    base_p50, base_p99 = pct(direct.lags, 50), pct(direct.lags, 99)

    # Streams at once as the browsers saw them (first to last token), and as the upstream
    # saw the worker's connections.
    peak = load.peak()
    worker_cpu = sampler.cpu.get("worker", 0.0)
    upstream_tokens = run["upstream"]["tokens"]
    worker_peak = run["upstream"]["peak"]
    return {
        "streams": target,
        "answers": expected,
        "tokens_per_answer": n,
        "worker_concurrency": stack.concurrency,
        "held_by_worker_peak": worker_peak,
        "streaming_at_once_seen": peak,
        "at_load_seconds": round(sum(b - a for a, b in windows) / 1e9, 1),
        "sends_at_load": len({p.started for p in at_load}),
        "added_ttft_ms_p50": r1(pct(ttft, 50) - base_ttft),
        "added_ttft_ms_p99": r1(pct(ttft, 99) - base_ttft),
        "added_ttft_ms_p50_new_comparison": r1(pct(ttft_first, 50) - base_ttft),
        "added_ttft_ms_p99_new_comparison": r1(pct(ttft_first, 99) - base_ttft),
        "added_ttft_ms_p50_follow_up": r1(pct(ttft_next, 50) - base_ttft),
        "added_ttft_ms_p99_follow_up": r1(pct(ttft_next, 99) - base_ttft),
        "added_delta_ms_p50": r1(pct(lags, 50) - base_p50),
        "added_delta_ms_p99": r1(pct(lags, 99) - base_p99),
        "delta_ms_max": r1(max(lags, default=float("nan"))),
        "whole_run_added_ttft_ms_p50": r1(pct(ttft_all, 50) - base_ttft),
        "whole_run_added_ttft_ms_p99": r1(pct(ttft_all, 99) - base_ttft),
        "whole_run_added_delta_ms_p50": r1(pct(lags_all, 50) - base_p50),
        "whole_run_added_delta_ms_p99": r1(pct(lags_all, 99) - base_p99),
        "send_post_ms_p50": r1(pct(send_ms, 50)),
        "send_post_ms_p99": r1(pct(send_ms, 99)),
        "send_to_claim_ms_p50": r1(pct(claim, 50)),
        "send_to_claim_ms_p99": r1(pct(claim, 99)),
        "send_to_upstream_ms_p50": r1(pct(to_upstream, 50)),
        "send_to_upstream_ms_p99": r1(pct(to_upstream, 99)),
        "first_token_delivery_ms_p50": r1(pct(delivery, 50)),
        "first_token_delivery_ms_p99": r1(pct(delivery, 99)),
        "baseline_ttft_ms_p50": r1(base_ttft),
        "baseline_delta_ms_p50": r1(base_p50),
        "baseline_delta_ms_p99": r1(base_p99),
        "baseline_answers": direct.answers,
        "tokens_received": len(lags_all),
        "lost": lost,
        "doubled": doubled,
        "out_of_order": out_of_order,
        "unfinished": unfinished,
        "rows_not_matching": rows_wrong,
        "final_texts_not_matching": finals_wrong,
        "errors": [c.error for c in comparisons if c.error][:5],
        "problems": problems[:5],
        "reconnects": sum(c.reconnects for c in comparisons),
        "deltas_for_unknown_panes": sum(c.unknown_deltas for c in comparisons),
        "upstream_tokens_to_worker": upstream_tokens,
        "upstream_refused": run["upstream"]["refused"],
        # Requests the worker made, and the TCP connections it opened for them: a new
        # connection costs the worker's loop about 20 turns, a kept-alive one about 6.
        "upstream_requests": run["upstream"]["served"],
        "upstream_connections": run["upstream"].get("connections"),
        "worker_cpu_s": round(worker_cpu, 2),
        "worker_cpu_us_per_delta": r1(
            worker_cpu / upstream_tokens * 1e6 if upstream_tokens else float("nan")
        ),
        "worker_rss_idle_mb": round(run["rss_idle"] / 2**20, 1),
        "worker_rss_peak_mb": round(sampler.rss_peak / 2**20, 1),
        "memory_kb_per_stream": r1(
            (sampler.rss_peak - run["rss_idle"]) / 1024 / max(1, worker_peak)
        ),
        "cores_used": {k: round(v / sampler.elapsed, 2) for k, v in sampler.cpu.items()},
        "machine_busy_pct": round(sampler.machine_busy * 100, 1),
        "other_load_cores": round(
            sampler.machine_busy * (os.cpu_count() or 1)
            - sum(sampler.cpu.values()) / max(sampler.elapsed, 1e-9),
            2,
        ),
        "client_loop_late_ms_p99": r1(pct(sampler.loop_late, 99)),
        "seconds": round(sampler.elapsed, 1),
        "flush_ms": window_ms,
    }


# ================================================================== targets and output

LOSS_FREE = (
    "lost",
    "doubled",
    "out_of_order",
    "unfinished",
    "rows_not_matching",
    "final_texts_not_matching",
)


def checks(name: str, numbers: dict[str, Any], window_ms: float) -> list[tuple[str, bool]]:
    def at_most(key: str, bound: float) -> tuple[str, bool]:
        value = numbers[key]
        return f"{key} <= {bound:g}", value is not None and value <= bound

    result: list[tuple[str, bool]] = []
    if name == "light":
        result += [
            at_most("added_ttft_ms_p50", 25),
            at_most("added_ttft_ms_p99", 80),
            at_most("added_delta_ms_p99", window_ms + 60),
        ]
    elif name == "heavy":
        held = min(numbers["held_by_worker_peak"], numbers["streaming_at_once_seen"])
        result += [
            ("streams held at once by the one worker >= 200", held >= 200),
            at_most("added_delta_ms_p99", 300),
            at_most("added_ttft_ms_p99", 500),
        ]
    if name in ("light", "heavy"):
        bad = {k: numbers[k] for k in LOSS_FREE if numbers[k]}
        result.append(("nothing lost, doubled, reordered or unfinished; rows match", not bad))
    return result


ROWS = [
    ("streams / answers (x turns)", ("streams", "answers")),
    ("held at once by the worker (upstream)", "held_by_worker_peak"),
    ("streaming at once (browsers)", "streaming_at_once_seen"),
    ("at load: seconds / Sends", ("at_load_seconds", "sends_at_load")),
    ("added TTFT p50 / p99 ms", ("added_ttft_ms_p50", "added_ttft_ms_p99")),
    (
        "  new comparison p50 / p99",
        ("added_ttft_ms_p50_new_comparison", "added_ttft_ms_p99_new_comparison"),
    ),
    ("  follow-up p50 / p99", ("added_ttft_ms_p50_follow_up", "added_ttft_ms_p99_follow_up")),
    ("added per-delta p50 / p99 ms", ("added_delta_ms_p50", "added_delta_ms_p99")),
    ("per-delta max ms", "delta_ms_max"),
    (
        "whole run: added TTFT p50 / p99 ms",
        ("whole_run_added_ttft_ms_p50", "whole_run_added_ttft_ms_p99"),
    ),
    (
        "whole run: added per-delta p50 / p99 ms",
        ("whole_run_added_delta_ms_p50", "whole_run_added_delta_ms_p99"),
    ),
    ("Send POST answered p50 / p99 ms", ("send_post_ms_p50", "send_post_ms_p99")),
    ("Send -> worker claims row p50 / p99 ms", ("send_to_claim_ms_p50", "send_to_claim_ms_p99")),
    (
        "Send -> upstream token 1 p50 / p99 ms",
        ("send_to_upstream_ms_p50", "send_to_upstream_ms_p99"),
    ),
    (
        "token 1 -> browser p50 / p99 ms",
        ("first_token_delivery_ms_p50", "first_token_delivery_ms_p99"),
    ),
    ("baseline TTFT p50 ms", "baseline_ttft_ms_p50"),
    ("baseline per-delta p50 / p99 ms", ("baseline_delta_ms_p50", "baseline_delta_ms_p99")),
    ("lost / doubled / out of order", ("lost", "doubled", "out_of_order")),
    (
        "unfinished / rows / final texts wrong",
        ("unfinished", "rows_not_matching", "final_texts_not_matching"),
    ),
    ("websocket reconnects", "reconnects"),
    ("upstream requests / connections", ("upstream_requests", "upstream_connections")),
    ("worker CPU per delta us", "worker_cpu_us_per_delta"),
    ("worker CPU s", "worker_cpu_s"),
    ("worker RSS idle / peak MB", ("worker_rss_idle_mb", "worker_rss_peak_mb")),
    ("memory per stream KB", "memory_kb_per_stream"),
    ("machine busy % / cores used by others", ("machine_busy_pct", "other_load_cores")),
    ("client loop late p99 ms", "client_loop_late_ms_p99"),
]


def show(title: str, numbers: dict[str, Any], verdicts: list[tuple[str, bool]]) -> None:
    print(f"\n== {title}")
    for label, key in ROWS:
        keys = key if isinstance(key, tuple) else (key,)
        value = " / ".join(str(numbers.get(k)) for k in keys)
        print(f"   {label:40} {value}")
    cores = "  ".join(f"{k} {v:.2f}" for k, v in numbers["cores_used"].items())
    print(f"   {'cores used':40} {cores}")
    for error in numbers["errors"]:
        print(f"   error: {error}")
    for problem in numbers["problems"]:
        print(f"   problem: {problem}")
    for text, ok in verdicts:
        print(f"   {'PASS' if ok else 'FAIL'}  {text}")
    sys.stdout.flush()


def run_spec(stack: Stack, spec: Spec, window_ms: float) -> dict[str, Any]:
    concurrency = max(RUN_PY_CONCURRENCY, spec.comparisons + 8)
    log(
        f"{spec.name}: {spec.comparisons} comparisons x {spec.panes} panes x {spec.turns} "
        f"turns, {spec.tokens} tokens each at {stack.rate:g}/s; worker --concurrency "
        f"{concurrency}"
    )
    stack.scenario = f"{spec.name}-{spec.comparisons * spec.panes}"
    stack.start_app(concurrency)
    answer_s = spec.tokens / stack.rate
    timeout = answer_s * 4 + 60
    try:
        run = asyncio.run(drive(stack, spec, timeout))
    finally:
        stack.stop_app()
    return analyse(stack, spec, run, window_ms)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=["light", "heavy", "ramp", "all"], default="all")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s of every answer")
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="length of every answer (default: light 6, heavy and ramp 20; quick: 3 and 5)",
    )
    parser.add_argument("--quick", action="store_true", help="short answers, a short ramp")
    parser.add_argument(
        "--turns", type=int, default=None, help="turns per comparison (default: light 8, others 2)"
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=None,
        help="seconds over which the comparisons' first Sends are spread (default: one answer's "
        "length, so that later turns run at full load; 0: all at once)",
    )
    parser.add_argument(
        "--ramp", default=None, help=f"stream counts to try ({RAMP}; quick {QUICK_RAMP})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record py-spy profiles of the worker and daphne (py-spy on PATH or $PY_SPY)",
    )
    opts = parser.parse_args()

    # Light load: two comparisons are few Sends, so more and shorter turns than under heavy
    # load; with 2 turns of 20 s, 3 Sends fell at load and their 12 panes made the p50.
    seconds = opts.seconds or (5.0 if opts.quick else 20.0)
    turns = max(1, opts.turns or 2)
    light_seconds = opts.seconds or (3.0 if opts.quick else 6.0)
    light_turns = max(1, opts.turns or (4 if opts.quick else 8))
    spread = seconds if opts.spread is None else opts.spread
    ramp = opts.ramp or (QUICK_RAMP if opts.quick else RAMP)
    steps = [int(s) for s in ramp.split(",") if s.strip()]
    wanted = ["light", "heavy", "ramp"] if opts.scenario == "all" else [opts.scenario]
    tokens = max(2, round(opts.rate * seconds))
    window = float(os.environ.get("PLAYGROUND_FLUSH_MS") or 40)

    def stop_on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C also when started from a script, where SIGINT may arrive ignored (as run.py does).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_term)
    signal.signal(signal.SIGHUP, stop_on_term)
    summary: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "commit": code_version(),
        "rate": opts.rate,
        "seconds": seconds,
        "flush_ms": window,
        "spread_s": spread,
        "turns": turns,
        "light_seconds": light_seconds,
        "light_turns": light_turns,
    }
    outcomes: list[bool] = []
    verdict_lines: list[str] = []
    profiler = ""
    if opts.profile:
        profiler = os.environ.get("PY_SPY") or shutil.which("py-spy") or ""
        if not profiler:
            parser.error("--profile needs py-spy (pip install py-spy, or set PY_SPY)")
    stack = Stack(opts.rate, opts.keep, profiler)
    log(f"measuring commit {summary['commit']} on {summary['machine']}")
    status = 0
    try:
        stack.start()
        for name in wanted:
            if name in ("light", "heavy"):
                light = name == "light"
                k, n = (2, light_turns) if light else (50, turns)
                length = light_seconds if light else seconds
                answer = max(2, round(opts.rate * length))
                spec = Spec(name, k, PANES, n, answer, length if opts.spread is None else spread)
                numbers = run_spec(stack, spec, window)
                verdicts = checks(name, numbers, window)
                show(f"{name}: {k} comparisons x {PANES} panes x {n} turns, "
                     f"{answer} tokens at {opts.rate:g}/s", numbers, verdicts)  # fmt: skip
                outcomes += [ok for _, ok in verdicts]
                verdict_lines += [
                    f"{'PASS' if ok else 'FAIL'}  {name}: {text}" for text, ok in verdicts
                ]
                summary[name] = {
                    **numbers,
                    "targets": {text: ok for text, ok in verdicts},
                    "pass": all(ok for _, ok in verdicts),
                }
            else:
                summary["ramp"] = []
                summary["delta_p99_over_1s_at_streams"] = None
                for streams in steps:
                    spec = Spec("ramp", max(1, streams // PANES), PANES, turns, tokens, spread)
                    numbers = run_spec(stack, spec, window)
                    show(f"ramp: {streams} streams ({spec.comparisons} comparisons x {PANES} "
                         f"panes x {turns} turns)", numbers, [])  # fmt: skip
                    summary["ramp"].append(numbers)
                    p99 = numbers["added_delta_ms_p99"]
                    if p99 is None or p99 > 1000:
                        summary["delta_p99_over_1s_at_streams"] = streams
                        break
                crossed = summary["delta_p99_over_1s_at_streams"]
                verdict_lines.append(
                    f"ramp: added per-delta p99 passes 1 s at "
                    f"{crossed if crossed else f'more than {steps[-1]}'} streams"
                )
    except KeyboardInterrupt:
        log("interrupted; stopping every process")
        summary["interrupted"] = True
        status = 130
    except Exception as error:  # report, clean up, and still end with the JSON line
        log(f"failed: {type(error).__name__}: {error}")
        summary["failed"] = f"{type(error).__name__}: {error}"[:500]
        status = 1
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()
    summary["pass"] = bool(outcomes) and all(outcomes) and status == 0
    if verdict_lines:
        print("\n== targets (issue 2)")
        for line in verdict_lines:
            print(f"   {line}")
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
