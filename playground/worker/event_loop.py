"""One long-lived asyncio event loop per worker process.

Celery runs tasks in threads (``--pool threads``); each task hands its turn to this loop and
waits. So one process streams many panes at once over one Redis client, a few httpx clients
and one publisher, instead of opening a loop and connections per task or per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis
from django.conf import settings

from playground.worker.sockets import AsyncioTransport

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


class WorkerContext:
    """What every run on this loop shares."""

    def __init__(self) -> None:
        from playground.worker.publisher import Publisher

        # Blocking pool: under load a pane waits for a free connection instead of failing
        # (redis-py's default pool raises "Too many connections"; bench/streams.py found it).
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=128, timeout=30
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self.http = HttpClients()
        self.publisher = Publisher(self.redis)
        # The worker was told to stop: a pane that would wait goes back to the queue
        # instead (worker/shutdown.py).
        self.stopping = False


class HttpClients:
    """The httpx clients of the provider calls. A call leases one for its duration; a
    client serves at most ``STREAMS_PER_CLIENT`` calls at once, and another is added when
    all are that busy (clients are kept for the process's life).

    With one client for every call, httpcore's pool walked all of its connections on every
    request and every close, and for each idle one all of them again: a fifth of the
    worker loop's busy samples in a py-spy profile at 200 streams, and 30 % more CPU per
    line in bench/http_clients.py (docs/performance.md). Light use stays on the first
    client, so its kept-alive connections are reused as before.
    """

    STREAMS_PER_CLIENT = 32
    # How long an idle connection is kept for the next call (httpx's default is 5 s). A
    # person reads an answer for longer than that before the follow-up; a new connection
    # then costs its TCP and TLS handshakes in the follow-up's time to first token, and
    # the worker's loop about 22 turns instead of 6 (bench/request_turns.py). A server
    # that closed it sooner is noticed before reuse (httpcore checks an idle socket).
    KEEPALIVE_S = 90.0

    def __init__(self, transport: type[httpx.AsyncHTTPTransport] = AsyncioTransport) -> None:
        self.transport = transport
        self.clients: list[httpx.AsyncClient] = []
        self.calls: list[int] = []

    @contextlib.contextmanager
    def lease(self) -> Iterator[httpx.AsyncClient]:
        index = next((i for i, n in enumerate(self.calls) if n < self.STREAMS_PER_CLIENT), None)
        if index is None:
            self.clients.append(_new_client(self.transport))
            self.calls.append(0)
            index = len(self.clients) - 1
        self.calls[index] += 1
        try:
            yield self.clients[index]
        finally:
            self.calls[index] -= 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        self.clients, self.calls = [], []


def _new_client(
    transport: type[httpx.AsyncHTTPTransport] = AsyncioTransport,
) -> httpx.AsyncClient:
    # A call holds one connection at a time (a token exchange comes before its stream).
    limits = httpx.Limits(
        max_connections=HttpClients.STREAMS_PER_CLIENT * 2,
        max_keepalive_connections=HttpClients.STREAMS_PER_CLIENT,
        keepalive_expiry=HttpClients.KEEPALIVE_S,
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10, read=120, write=30, pool=30),
        follow_redirects=False,  # a key is only ever sent to the URL it was saved with
        # Never the environment's HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, netrc or
        # SSL_CERT_FILE: a provider call goes to its base URL and to nowhere else.
        trust_env=False,
        # Headers and body go out as two writes; with Nagle's algorithm the body waits for
        # the ACK of the headers, which the server delays (40 ms on Linux). Measured by
        # bench/streams.py as added time to first token.
        # Sockets on plain asyncio rather than anyio: less of the loop per chunk read and
        # per new connection (playground/worker/sockets.py).
        transport=transport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], limits=limits
        ),
    )


_context: WorkerContext | None = None


def _run_forever(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    ready.set()
    loop.run_forever()


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed: the worker is CPU-bound in its read path under load, and
    uvloop spends less per chunk read (measured in docs/performance.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = new_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=_run_forever, args=(loop, ready), name="playground-streams", daemon=True
            )
            thread.start()
            ready.wait()
            _loop = loop
        return _loop


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The worker loop, if this process has started it."""
    with _lock:
        return _loop if _loop is not None and not _loop.is_closed() else None


def context() -> WorkerContext:
    """The shared clients; only call from inside the worker loop."""
    global _context
    if _context is None:
        _context = WorkerContext()
        _context.publisher.start()
    return _context


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the worker loop from any thread and wait for its result."""
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    return future.result(timeout)
