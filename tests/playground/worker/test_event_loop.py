"""The worker's httpx clients: light use stays on one client (its kept-alive connections
are reused); under load no client serves more than STREAMS_PER_CLIENT calls at once."""

from __future__ import annotations

import asyncio
import contextlib
import re

from playground.worker.event_loop import HttpClients


async def test_calls_share_one_client_until_it_is_full_then_the_next_one() -> None:
    clients = HttpClients()
    limit = HttpClients.STREAMS_PER_CLIENT
    try:
        with clients.lease() as first, clients.lease() as again:
            assert first is again  # four panes of a comparison: one pool, one keep-alive
        with contextlib.ExitStack() as calls:
            leased = [calls.enter_context(clients.lease()) for _ in range(limit + 5)]
            assert [leased.count(c) for c in clients.clients] == [limit, 5]
            assert leased[0] is first
        assert clients.calls == [0, 0]
        with clients.lease() as later:
            assert later is first  # back on the first client, its connections kept
    finally:
        await clients.aclose()


async def test_a_follow_up_a_minute_later_goes_over_the_same_connection() -> None:
    """A person reads the answer for a minute, then sends a follow-up: the provider sees
    one connection, not a new TCP (and TLS) handshake on the follow-up's way."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    clients = HttpClients()
    try:
        with clients.lease() as client:
            assert (await client.post(url, json={"turn": 1})).text == "ok"
            # A minute passes: what it does to each kept connection's expiry time.
            for connection in client._transport._pool.connections:  # type: ignore[attr-defined]
                connection._connection._expire_at -= 60
            assert (await client.post(url, json={"turn": 2})).text == "ok"
        assert connections == 1
    finally:
        await clients.aclose()
        server.close()
        await server.wait_closed()
