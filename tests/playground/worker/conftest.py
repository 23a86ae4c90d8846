"""Fixtures of the worker's tests: the worker process's own event loop (in its thread, as
Celery's task threads hand their turns to it), and a task body run as Celery runs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from playground.tasks import run_turn
from playground.worker import event_loop
from tests.playground.conftest import _close_connections_in, close_worker_context


@pytest.fixture
def worker_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The worker process's event loop, with a context of its own for this test; what it
    opened is closed afterwards."""
    loop = event_loop.get_loop()
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="test-worker-db")
    loop.call_soon_threadsafe(loop.set_default_executor, executor)
    event_loop._context = None
    yield loop
    asyncio.run_coroutine_threadsafe(close_worker_context(), loop).result(timeout=20)
    _close_connections_in(executor)
    executor.shutdown(wait=True)


def celery_task(turn_id: int, response_ids: list[int] | None = None) -> None:
    """The task body as a worker thread runs it; its database connection closed after."""
    try:
        run_turn(turn_id, response_ids)
    finally:
        connections.close_all()


def wait_for(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
