"""Blocking database work called from async code (the websocket consumer, the watchdog,
the worker's Test connection).

asgiref's default, ``thread_sensitive=True``, runs it on one thread shared by every
websocket of the daphne process (views have their own threads: ``http_handler.py``), so
rendering finished answers for one socket would queue the others behind it. This runs it
in the executor's threads instead, and closes connections the way the end of a request
would: a connection kept in an executor thread is broken for good once PostgreSQL restarts,
and would fail every call that thread runs after it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def off_request_thread(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)
