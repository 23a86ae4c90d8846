"""The worker's httpx clients: light use stays on one client (its kept-alive connections
are reused); under load no client serves more than STREAMS_PER_CLIENT calls at once."""

from __future__ import annotations

import contextlib

from playground.worker_loop import HttpClients


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
