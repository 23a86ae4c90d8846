"""The session websocket while the database does not answer, through the real ASGI
application: a socket opened then is closed with 4503 (the page tries again), a socket
already following rides it out, and once the database is back nothing stays broken.

The database is away for real (tests/playground/helpers.py ``database_away``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from playground.database_away import SOCKET_CLOSE_CODE
from playground.live.consumer import BLOCK_MS
from playground.models import Response, Status
from tests.playground.helpers import database_away
from tests.playground.live.test_consumer import (
    ORIGIN,
    connected,
    cookie_for,
    delta,
    response_ids,
    socket,
    streaming_turn,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("consumer_redis"),
]


@pytest.fixture
def person(owner: Any) -> Any:
    """The owner, this thread's connection closed behind them: no connection may be open
    when SQLite is locked (its are kept a minute)."""
    connections.close_all()
    return owner


@contextlib.asynccontextmanager
async def away() -> AsyncIterator[None]:
    """``database_away`` entered and left on Channels' shared thread, which closes the
    connection that thread keeps (the tests' rows were made there)."""
    outage = database_away()
    await sync_to_async(outage.__enter__)()
    try:
        yield
    finally:
        await sync_to_async(outage.__exit__)(None, None, None)


async def test_a_socket_opened_while_the_database_is_away_is_closed_with_4503_then_follows(
    person: Any, aredis: Any
) -> None:
    turn = await streaming_turn(person)
    [rid] = await response_ids(turn)
    await aredis.xadd(f"pg:log:{rid}", delta(1, "Kept "), id="0-1")
    cookie = await sync_to_async(cookie_for)(person)

    async with away():
        ws = socket(turn.session_id, cookie, ORIGIN)
        accepted, _ = await ws.connect(timeout=5)
        closed = await ws.receive_output(timeout=5)
        await ws.wait(timeout=1)
    assert accepted  # then closed with a code the page can tell from a network fault
    assert closed == {"type": "websocket.close", "code": SOCKET_CLOSE_CODE}

    ws = await connected(turn.session_id, person)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        assert f'beforeend:#response-{rid}-text">Kept </div>' in await ws.receive_from(timeout=5)
    finally:
        await ws.disconnect()


async def test_a_following_socket_rides_out_the_database_away_and_shows_the_end(
    person: Any, aredis: Any
) -> None:
    """The follower looks at the database when the logs are quiet (for panes whose worker
    died): that look fails while it is away, and the socket goes on following."""
    turn = await streaming_turn(person)
    [rid] = await response_ids(turn)
    log = f"pg:log:{rid}"
    await aredis.set(f"pg:hb:{rid}", 1, ex=60)  # its worker is alive
    await aredis.xadd(log, delta(1, "Before "), id="0-1")
    ws = await connected(turn.session_id, person)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        await ws.receive_from(timeout=5)
        async with away():
            await asyncio.sleep(BLOCK_MS / 1000 * 1.5)  # a quiet read: the follower looked
            await aredis.xadd(log, delta(2, "during"), id="0-2")
            during = await ws.receive_from(timeout=5)
        assert f'beforeend:#response-{rid}-text">during</div>' in during

        await sync_to_async(Response.objects.filter(pk=rid).update)(
            status=Status.DONE, text="Before during", output_tokens=2, finish_reason="stop"
        )
        await aredis.xadd(log, {"k": "e", "st": "done"}, id="0-3")
        final = await ws.receive_from(timeout=5)
        assert final.startswith(f'<article class="response status-done" id="response-{rid}"')
        assert "<p>Before during</p>" in final
    finally:
        await ws.disconnect()


@pytest.fixture
def cut_connections(transactional_db: Any) -> Iterator[Any]:
    """What a PostgreSQL restart does to the connections open at the time: every other
    backend of the database is ended (``pg_terminate_backend``); this thread's own too,
    afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's connections: SQLite's are files, nothing to cut")

    def cut() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])

    yield sync_to_async(cut)  # on Channels' shared thread, apart from the follower's
    connections.close_all()


async def test_a_follower_whose_connections_a_restart_cut_still_ends_a_dead_pane(
    owner: Any, aredis: Any, cut_connections: Any
) -> None:
    """A pane without heartbeat is ended at the follower's second quiet look, 2 s after
    the first; PostgreSQL restarts in between. A connection kept from the first look would
    be broken for good: the second look opens a new one."""
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    await aredis.xadd(f"pg:log:{rid}", delta(1, "What had arrived"), id="0-1")
    ws = await connected(turn.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 1}})
        await asyncio.sleep(BLOCK_MS / 1000 * 1.4)  # the first quiet look noted the pane
        assert await cut_connections() >= 1
        final = await ws.receive_from(timeout=BLOCK_MS / 1000 * 3)
        assert final.startswith(f'<article class="response status-interrupted" id="response-{rid}"')
        assert "What had arrived" in final
    finally:
        await ws.disconnect()
