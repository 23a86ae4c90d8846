"""How long a turn keeps the Celery thread that brought it: while one of its panes streams.

A pane that waits (for its endpoint's slot, for its key's rate limit) is held by the
worker's event loop alone, which can hold any number of them for the price of a coroutine.
Were the task's thread to wait with it, a queue at a one-at-a-time endpoint (the local model)
would take every thread of the worker, and no one else's turn would start until it drained.
So the task waits only while some pane of its turn streams: once every pane still running
waits (or all have ended), the thread goes back to Celery for the next turn, and the loop
carries on with the turn. The threads still bound how much one process streams.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from playground.worker.response_run import ResponseRun

log = logging.getLogger(__name__)


class ThreadHold:
    """Released once every run of a turn waits or is over (ended, or handed back and
    queued again); runs call :meth:`check` whenever they start or stop waiting and when
    they are over."""

    def __init__(self, runs: list[ResponseRun]) -> None:
        self.runs = runs
        self.released = threading.Event()
        for run in runs:
            run.hold = self

    def check(self) -> None:
        if all(run.waiting or run.finished.is_set() for run in self.runs):
            self.released.set()


def run_while_streaming(
    runs: list[ResponseRun], turn: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> None:
    """Run ``turn`` (the streaming of ``runs``) on ``loop``; return once none of its panes
    streams any more: all ended, or the rest waiting (the loop goes on with them)."""
    hold = ThreadHold(runs)

    async def whole_turn() -> None:
        try:
            await turn
        finally:
            hold.released.set()

    future = asyncio.run_coroutine_threadsafe(whole_turn(), loop)
    future.add_done_callback(_log_failure)
    hold.released.wait()


def _log_failure(future: Any) -> None:
    # Nobody may be waiting on the turn any more: what went wrong is logged here.
    if not future.cancelled() and future.exception() is not None:
        error = future.exception()
        log.error("a turn failed on the worker loop: %s", type(error).__name__)
