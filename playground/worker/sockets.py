"""The worker's sockets for httpx, on plain asyncio instead of anyio.

httpx reaches the network through httpcore, whose default backend wraps every read in an
anyio cancel scope and opens a connection through anyio's task group, events and locks.
Under load the worker's one loop is the limit, and that wrapping was a tenth of its busy
samples per chunk read, and most of the ~22 loop turns a call waits before its request
goes out on a new connection (bench/request_turns.py, docs/performance.md). This backend
does the same work on an asyncio protocol: a read that finds data buffered returns it
without waiting, a read that waits sets one timer, and a connection is one
``create_connection``.

It speaks httpcore's public network interface (``AsyncNetworkBackend`` and
``AsyncNetworkStream``), so TLS, proxies, keep-alive and httpx's own errors are as before.
"""

# httpcore's interface passes each timeout as an argument (ASYNC109).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore
import httpx
from httpcore import _synchronization as httpcore_sync
from httpcore._async import connection as httpcore_connection
from httpcore._async import connection_pool as httpcore_pool
from httpcore._async import http11 as httpcore_http11

from playground import egress
from providers.base import ErrorKind, ProviderError

# Reading stops while this much is buffered and unread, as asyncio's streams do.
_HIGH_WATER = 256 * 1024


class _Protocol(asyncio.Protocol):
    """Buffers what the socket delivers until ``SocketStream.read`` takes it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's: no isinstance checks here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self.error = exc
        self._wake_reader()
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def pause_writing(self) -> None:
        if self.writer is None or self.writer.done():
            self.writer = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        if len(data) > max_bytes:
            self.chunks = [data[max_bytes:]]
            data = data[:max_bytes]
        else:
            self.chunks = []
        self.buffered -= len(data)
        if self.paused and self.buffered <= _HIGH_WATER // 4 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


def _timeout(future: asyncio.Future[None], error: type[Exception]) -> None:
    if not future.done():
        future.set_exception(error())


class SocketStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.chunks:
            if protocol.eof:
                if protocol.error is not None:
                    raise httpcore.ReadError(str(protocol.error) or "connection lost")
                return b""
            await self._wait("reader", timeout, httpcore.ReadTimeout)
            if not protocol.chunks:
                if protocol.error is not None:
                    raise httpcore.ReadError(str(protocol.error) or "connection lost")
                return b""
        return protocol.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if self._protocol.writer is not None and not self._protocol.writer.done():
            await self._wait("writer", timeout, httpcore.WriteTimeout)

    async def _wait(self, which: str, timeout: float | None, error: type[Exception]) -> None:
        protocol = self._protocol
        future: asyncio.Future[None] | None = getattr(protocol, which)
        if future is None or future.done():
            future = protocol.loop.create_future()
            setattr(protocol, which, future)
        timer = None
        if timeout is not None:
            timer = protocol.loop.call_later(timeout, _timeout, future, error)
        try:
            await future
        finally:
            if timer is not None:
                timer.cancel()
            setattr(protocol, which, None)

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = self._protocol.loop
        try:
            transport = await loop.start_tls(
                self._transport,
                self._protocol,
                ssl_context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = cast(asyncio.Transport, transport)
        return SocketStream(self._protocol.transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":
            # An idle connection the server closed (or wrote to) has had it delivered to
            # the protocol already: httpcore then drops it instead of reusing it.
            return bool(self._protocol.chunks) or self._protocol.eof
        return None


async def _connect_public(
    loop: asyncio.AbstractEventLoop,
    protocol: _Protocol,
    host: str,
    port: int,
    local: tuple[str, int] | None,
) -> asyncio.BaseTransport:
    """Resolve ``host``, refuse it if any address is not public (egress.refusal), and
    connect to the addresses checked, not to the name again."""
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ProviderError(
            ErrorKind.NETWORK, f"{host} does not resolve to an address.", permanent=False
        ) from exc
    refused = egress.refusal(host, [str(info[4][0]) for info in infos])
    if refused or not infos:
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            refused or f"{host} does not resolve to an address.",
            permanent=True,
        )
    error: OSError | None = None
    for family, kind, proto, _name, address in infos:
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol,
                sock=await _socket_to(loop, family, kind, proto, address, local),
            )
            return transport
        except OSError as exc:
            error = exc
    assert error is not None
    raise error


async def _socket_to(
    loop: asyncio.AbstractEventLoop,
    family: int,
    kind: int,
    proto: int,
    address: tuple[Any, ...],
    local: tuple[str, int] | None,
) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        if local is not None:
            sock.bind(local)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(loop)
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                if egress.connection_rule(host):
                    transport = await _connect_public(loop, protocol, host, port, local)
                else:
                    transport, _ = await loop.create_connection(
                        lambda: protocol, host, port, local_addr=local
                    )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} in time") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return SocketStream(cast(asyncio.Transport, transport), protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(loop)
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_unix_connection(lambda: protocol, path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {path} in time") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return SocketStream(cast(asyncio.Transport, transport), protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Lock(httpcore_sync.AsyncLock):
    """httpcore's lock on asyncio's own: a free lock is taken without giving up the loop.
    (anyio's, which httpcore uses on asyncio, yields a whole loop turn on every acquire,
    and a request takes two: one per connection, one per HTTP/1.1 state.)"""

    def setup(self) -> None:
        self._backend = "asyncio-native"
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> _Lock:
        if not self._backend:
            self.setup()
        await self._lock.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class _Event(httpcore_sync.AsyncEvent):
    """httpcore's pool event on asyncio's own: a waiter whose connection is already
    assigned goes on without a loop turn; one that waits past the pool timeout gets
    httpcore's PoolTimeout, as before."""

    def setup(self) -> None:
        self._backend = "asyncio-native"
        self._event = asyncio.Event()

    def set(self) -> None:
        if not self._backend:
            self.setup()
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        if not self._backend:
            self.setup()
        if self._event.is_set():
            return
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError as exc:
            raise httpcore.PoolTimeout("no connection was free in time") from exc


def _use_asyncio_locks() -> None:
    """Make httpcore's HTTP/1.1 connections and pool take these. httpcore names the classes
    in each module that uses them (``from .._synchronization import ...``); HTTP/2 and the
    proxies keep anyio's. Every httpx client of the process is on asyncio (the worker's
    loop, daphne's), so the swap is safe for all of them."""
    for module, name, replacement in (
        (httpcore_connection, "AsyncLock", _Lock),
        (httpcore_http11, "AsyncLock", _Lock),
        (httpcore_pool, "AsyncEvent", _Event),
    ):
        current = getattr(module, name, None)
        if current is not replacement and not (
            isinstance(current, type) and issubclass(current, getattr(httpcore_sync, name))
        ):
            raise RuntimeError(f"httpcore changed: {module.__name__}.{name} is not its own")
        setattr(module, name, replacement)


_use_asyncio_locks()


@functools.cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One context for every client: making one loads the CA bundle, 10-20 ms of the loop
    each time the worker adds a client under load; and TLS sessions are shared."""
    return httpx.create_ssl_context(verify=verify)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx's transport for direct connections, its connections made by
    :class:`AsyncioBackend`."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        socket_options: Iterable[Any] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else _ssl_context(verify)
        super().__init__(limits=limits, socket_options=socket_options, verify=context)
        # httpx builds its pool without a way to pass the backend: the same pool again,
        # through httpcore's public constructor, with this backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            socket_options=socket_options,
            network_backend=AsyncioBackend(),
        )
