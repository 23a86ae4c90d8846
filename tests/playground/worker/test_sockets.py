"""The worker's sockets (playground/worker/sockets.py) under httpx, against real local servers:
a stream arrives as the server writes it, over TLS too; a stalled server times out; a cut
connection is an error, not a short answer; kept connections are reused, and dropped when
the server closed them; big bodies go both ways intact."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from playground.worker.event_loop import _new_client, new_loop


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Runs a test's scenario on asyncio's own loop, and again on uvloop (the worker's); one
    that hangs fails after 30 s."""
    factory = new_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(scenario: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(scenario, 30))

    return run


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return await reader.readexactly(int(length.group(1)) if length else 0)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def answer_one_event(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read a request; send the stream's head and its first event."""
    await read_request(reader)
    writer.write(STREAM_HEAD + chunk(b"data: {}\n\n"))
    await writer.drain()


async def read_to_end(http: httpx.AsyncClient, base: str) -> None:
    async with http.stream("POST", f"{base}/v1/chat/completions", json={}) as response:
        async for _ in response.aiter_lines():
            pass


@contextlib.asynccontextmanager
async def client(**options: object) -> AsyncIterator[httpx.AsyncClient]:
    http = _new_client()
    for name, value in options.items():
        setattr(http, name, value)
    try:
        yield http
    finally:
        await http.aclose()


def test_each_line_arrives_as_the_server_writes_it(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    """The second line is not written until the first has been read: a read that waited
    for more (or for the end) would hang here."""

    async def scenario() -> None:
        read_first = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(STREAM_HEAD + chunk(b'data: {"n": 1}\n\n'))
            await writer.drain()
            await asyncio.wait_for(read_first.wait(), 5)
            writer.write(chunk(b'data: {"n": 2}\n\n') + chunk(b"data: [DONE]\n\n") + chunk(b""))
            await writer.drain()

        async with serving(handler) as base, client() as http:
            lines = []
            async with http.stream("POST", f"{base}/v1/chat/completions", json={}) as response:
                async for line in response.aiter_lines():
                    lines.append(line)
                    read_first.set()
        assert [line for line in lines if line] == [
            'data: {"n": 1}',
            'data: {"n": 2}',
            "data: [DONE]",
        ]

    run(scenario())


def test_a_server_that_stops_sending_times_out(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def scenario() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await answer_one_event(reader, writer)
            await asyncio.sleep(10)

        async with serving(handler) as base, client(timeout=httpx.Timeout(5, read=0.3)) as http:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await read_to_end(http, base)
            assert time.monotonic() - started < 3

    run(scenario())


def test_a_connection_cut_mid_stream_is_an_error_not_a_short_answer(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def scenario() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await answer_one_event(reader, writer)
            writer.transport.abort()  # no last chunk: the body is incomplete

        async with serving(handler) as base, client() as http:
            with pytest.raises(httpx.TransportError):
                await read_to_end(http, base)

    run(scenario())


def test_no_server_is_a_connect_error(run: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    async def scenario() -> None:
        async with serving(read_request) as base:
            pass  # the port is closed again
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.post(f"{base}/v1/chat/completions", json={})

    run(scenario())


def test_kept_connections_are_reused_and_one_the_server_closed_is_not(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def scenario() -> None:
        connections = 0
        close_after_answer = False

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                if close_after_answer:
                    return  # closed while the client keeps the connection idle

        async with serving(handler) as base, client() as http:
            url = f"{base}/v1/chat/completions"
            for _ in range(3):
                assert (await http.post(url, json={})).text == "ok"
            assert connections == 1
            close_after_answer = True
            assert (await http.post(url, json={})).text == "ok"
            await asyncio.sleep(0.2)  # the server's close reaches the idle connection
            close_after_answer = False
            assert (await http.post(url, json={})).text == "ok"  # on a new connection, no error
            assert connections == 2

    run(scenario())


def test_big_bodies_go_both_ways_intact(run: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    """A request with an image in it (megabytes, more than a socket buffer) and an answer
    bigger than what the client buffers before it stops reading."""

    async def scenario() -> None:
        sent = bytes(range(256)) * 16 * 1024  # 4 MiB
        answer = bytes(reversed(range(256))) * 8 * 1024  # 2 MiB

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            body = await read_request(reader)
            digest = hashlib.sha256(body).hexdigest().encode()
            writer.write(b"HTTP/1.1 200 OK\r\nx-received: %s\r\n" % digest)
            writer.write(b"content-length: %d\r\n\r\n%s" % (len(answer), answer))
            await writer.drain()

        async with serving(handler) as base, client() as http:
            received = bytearray()
            async with http.stream("POST", f"{base}/upload", content=sent) as response:
                async for part in response.aiter_bytes():
                    received += part
                    await asyncio.sleep(0)  # a slow reader: the server outpaces it
        assert response.headers["x-received"] == hashlib.sha256(sent).hexdigest()
        assert bytes(received) == answer

    run(scenario())


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_a_stream_over_tls_checks_the_certificate(
    run: Callable[[Coroutine[Any, Any, None]], None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        from playground.worker.sockets import AsyncioTransport

        cert_file, key_file = _certificate(tmp_path)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(cert_file, key_file)

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(STREAM_HEAD + chunk(b'data: "secret"\n\n') + chunk(b""))
            await writer.drain()

        trusted = ssl.create_default_context(cafile=str(cert_file))
        limits = httpx.Limits(max_connections=4)
        async with serving(handler, tls=server_tls) as base:
            async with httpx.AsyncClient(
                transport=AsyncioTransport(limits=limits, verify=trusted)
            ) as http:
                response = await http.post(f"{base}/v1/chat/completions", json={})
                assert response.text.splitlines()[0] == 'data: "secret"'
            # A client that does not trust the certificate sends nothing.
            async with client() as http:
                with pytest.raises(httpx.ConnectError):
                    await http.post(f"{base}/v1/chat/completions", json={})

    run(scenario())


def test_a_call_waits_for_a_free_connection_and_gives_up_at_the_pool_timeout(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    """httpcore's pool and connection locks run on asyncio's own (http_network._Lock,
    _Event): with the only connection busy, a second call waits for it; past the pool
    timeout it fails with httpx's PoolTimeout; once the first answer ends it goes through
    on the same connection."""

    async def scenario() -> None:
        finish = asyncio.Event()
        connections = 0

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            while True:
                await answer_one_event(reader, writer)
                await asyncio.wait_for(finish.wait(), 10)
                writer.write(chunk(b""))
                await writer.drain()

        from playground.worker.sockets import AsyncioTransport

        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with (
            serving(handler) as base,
            httpx.AsyncClient(
                transport=AsyncioTransport(limits=one), timeout=httpx.Timeout(5, pool=0.3)
            ) as http,
        ):
            url = f"{base}/v1/chat/completions"
            async with http.stream("POST", url, json={}) as first:
                with pytest.raises(httpx.PoolTimeout):
                    await http.post(url, json={})
                second = asyncio.create_task(
                    http.post(url, json={}, timeout=httpx.Timeout(5, pool=5))
                )
                await asyncio.sleep(0.1)
                assert not second.done()  # waiting for the connection
                finish.set()
                await first.aread()
            assert (await second).status_code == 200
        assert connections == 1

    run(scenario())
