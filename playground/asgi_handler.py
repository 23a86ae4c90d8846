"""Django's ASGI handler, serving each request's middleware and view in one hop to a kept thread.

Every view here is synchronous. Django's own ASGI handler, for one such request:
- starts a new thread (a ``ThreadSensitiveContext`` per request gets its own one-thread
  executor), so the request also opens a new database connection, whatever CONN_MAX_AGE says;
- builds an async middleware chain and calls each synchronous middleware hook and the view
  through a ``sync_to_async`` hop of its own: about fifteen hand-overs between daphne's event
  loop and that thread, each waiting for the loop and for the GIL.
Profiled with py-spy under the benchmark's Sends, the thread start alone was 2 ms of a 28 ms
Send, the new connection 1 ms more.

This handler builds the synchronous chain (as the WSGI handler does) and runs it, view
included, in ONE hop to a thread of a pool that lives as long as the process, so threads and
their database connections are reused (closed as Django closes them at the end of a request:
when broken or older than CONN_MAX_AGE). Reading the body and sending the response stay as
Django does them, on the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponseBase


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # A request waits only when this many views run at once, so no view may wait for
        # a worker (Test connection polls instead: playground/connection_tests.py);
        # threads are started on demand and kept.
        self.pool = ThreadPoolExecutor(
            max_workers=settings.PLAYGROUND_HTTP_THREADS, thread_name_prefix="http"
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP only, not {scope['type']}.")
        # No ThreadSensitiveContext: the request's work runs in one hop to a kept thread.
        await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, context.run, self._respond, request)

    def _respond(self, request: HttpRequest) -> HttpResponseBase:
        # What request_started and request_finished do in the thread that holds the
        # connections: drop broken ones and ones past CONN_MAX_AGE (0: every request).
        close_old_connections()
        try:
            response = self.get_response(request)
            # The body is rendered here, on this thread, so nothing touches the database
            # once the response leaves it.
            return response
        finally:
            close_old_connections()
