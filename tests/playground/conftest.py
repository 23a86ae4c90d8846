import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest


def _close_connections_in(executor: ThreadPoolExecutor) -> None:
    """Close the Django database connections that every thread of ``executor`` opened.

    Code run through sync_to_async in a worker thread keeps that thread's connection open;
    left open, PostgreSQL refuses to drop the test database at the end of the run. One
    task per thread, held at a barrier, so that each thread runs exactly one of them.
    """
    from django.db import connections

    threads = len(executor._threads)
    if not threads:
        return
    barrier = threading.Barrier(threads)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=10)

    for future in [executor.submit(close) for _ in range(threads)]:
        future.result(timeout=20)


async def close_worker_context() -> None:
    """Drop the worker's context (on the loop it was made on) and close what it opened."""
    from playground.worker import event_loop

    ctx, event_loop._context = event_loop._context, None
    if ctx is None:
        return
    task = ctx.publisher._task
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await ctx.http.aclose()
    await ctx.redis.aclose()


@pytest.fixture(autouse=True)
def _close_thread_sensitive_connections() -> Any:
    """sync_to_async's shared thread (thread_sensitive=True, as the websocket consumer and
    Channels use it) keeps its database connection between tests; close it after each."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=20)


@pytest.fixture(autouse=True)
def _clean_redis(clean_redis: Any) -> Any:
    return clean_redis


@pytest.fixture
async def worker_context() -> Any:
    """A fresh playground.worker.event_loop context for this test's event loop.

    The context (a redis.asyncio client, the httpx clients and the publisher's task) is
    process-global and bound to the loop that first created it; every async test has its
    own loop, so it is dropped before the test and closed after it.
    """
    from playground.worker import event_loop

    # The runner reads and writes rows with sync_to_async(thread_sensitive=False), which
    # runs in the loop's default executor: one the fixture owns, to close its connections.
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="test-runner-db")
    asyncio.get_running_loop().set_default_executor(executor)
    event_loop._context = None
    yield
    await close_worker_context()
    _close_connections_in(executor)
    executor.shutdown(wait=True)


@pytest.fixture
async def consumer_redis() -> Any:
    """The websocket consumers' shared redis.asyncio pool, fresh for this test's loop."""
    from playground.live import consumer

    consumer._redis = None
    yield
    client, consumer._redis = consumer._redis, None
    if client is not None:
        await client.aclose()


@pytest.fixture
async def aredis() -> Any:
    """An async client of the run's Redis, for tests that run inside an event loop."""
    import redis.asyncio as aioredis
    from django.conf import settings

    client = aioredis.Redis.from_url(settings.REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def fake_server() -> Any:
    """A fake OpenAI-compatible server on loopback that records what it is sent
    (tests/playground/fake_openai.py), and its base URL."""
    from tests.playground.fake_openai import serve

    async with serve() as served:
        yield served
