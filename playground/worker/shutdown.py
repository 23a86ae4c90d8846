"""A worker told to stop (SIGTERM, Ctrl-C: Celery's warm shutdown) hands its panes back.

Celery stops taking tasks and waits for the running ones. The panes streaming in this
process get ``PLAYGROUND_SHUTDOWN_GRACE_SECONDS`` to finish; then each one left is ended as
a Stop would end it, but "interrupted", with its text and a sentence saying why, and its
usage settled (playground.worker.runner.run_response). So no pane is left streaming for the
watchdog, and the tasks return, and are acknowledged, before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from playground.worker import event_loop

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = (
    "The worker streaming this answer was shut down before it ended; this is what had "
    "arrived. Send again to ask anew."
)


def hand_back_after(grace: float) -> threading.Timer:
    """In ``grace`` seconds, end every pane still streaming in this process (a thread)."""
    timer = threading.Timer(grace, _hand_back)
    timer.daemon = True
    timer.name = "playground-shutdown"
    timer.start()
    return timer


def _hand_back() -> None:
    loop = event_loop.running_loop()
    if loop is None:
        return  # nothing ever streamed here
    handed = asyncio.run_coroutine_threadsafe(interrupt_all(), loop).result(timeout=30)
    if handed:
        log.warning("shutting down: ended %s streaming panes as interrupted", handed)


async def interrupt_all() -> int:
    """End every pane of this process that is still streaming; returns how many."""
    runs = [r for r in event_loop.context().publisher.runs.values() if r.end_status is None]
    for run in runs:
        run.shutting_down = True
        run.stop_event.set()
    return len(runs)
