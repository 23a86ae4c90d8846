"""A worker told to stop (SIGTERM, Ctrl-C: Celery's warm shutdown) hands its panes back.

Celery stops taking tasks and waits for the running ones. A pane that has not called its
provider yet (it waits for its endpoint's slot or its key's rate limit, and holds no Celery
thread, so Celery would not wait for it) goes back to the queue at once: its row pending
again and its turn's task sent again for it alone, so another worker, or this one once
started again, answers it from the start. It has shown no text, so nothing is lost; it is
handed back only once its run here is over (cancelled before any call, its log's last
entry written), so no two workers ever run it at once. A pane of this worker that would
start waiting from then on is handed back as well.

The panes streaming in this process get ``PLAYGROUND_SHUTDOWN_GRACE_SECONDS`` to finish;
then each one left is ended as a Stop would end it, but "interrupted", with its text and a
sentence saying why, and its usage settled (playground.worker.runner.run_response). So no
pane is left streaming for the watchdog, and the tasks return, and are acknowledged,
before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import kombu.exceptions
import redis
from asgiref.sync import sync_to_async

from playground.celery import app
from playground.live.response_end import close_log_now, end_response
from playground.models import Response, Status
from playground.redis_sync import redis_client
from playground.worker import event_loop
from playground.worker.publisher import Publisher
from playground.worker.response_run import ResponseRun

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = (
    "The worker streaming this answer was shut down before it ended; this is what had "
    "arrived. Send again to ask anew."
)
# The status line of a pane handed back, until another worker takes it.
HANDED_BACK_MESSAGE = "waiting for a worker — the one that had this answer is stopping"
# A pane that could not be handed back (the queue did not take its task).
NOT_HANDED_BACK_MESSAGE = (
    "The worker that had this answer was shut down before it asked the model, and the "
    "answer could not be queued again; nothing was asked, and nothing is counted. Send "
    "again to ask anew."
)
# How long the signal handler waits for the waiting panes to be handed back.
HAND_BACK_TIMEOUT_S = 15.0


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


def hand_back_waiting_now() -> None:
    """Hand back every pane of this process that waits (the signal handler's thread:
    returns once they are queued again, or after HAND_BACK_TIMEOUT_S)."""
    loop = event_loop.running_loop()
    if loop is None:
        return  # nothing ever ran here
    handing = asyncio.run_coroutine_threadsafe(hand_back_waiting(), loop)
    try:
        handed = handing.result(timeout=HAND_BACK_TIMEOUT_S)
    except TimeoutError:
        log.warning("shutting down: waiting panes not all handed back in time")
        return
    if handed:
        log.warning("shutting down: handed %s waiting panes back to the queue", handed)


async def hand_back_waiting() -> int:
    """From now on this worker starts no wait; hand back every pane that waits now, and
    return how many, once each is queued again (or could not be)."""
    ctx = event_loop.context()
    ctx.stopping = True
    runs = [
        r
        for r in ctx.publisher.runs.values()
        if r.requeue and r.waiting and r.calling_at is None and r.end_status is None
    ]
    for run in runs:
        begin_hand_back(run)
    for run in runs:
        await run.finished.wait()
    return len(runs)


def begin_hand_back(run: ResponseRun) -> None:
    """Have ``run``, which has not called its provider, handed back: its run here stops
    (playground.worker.runner.run_response), then :func:`hand_back`."""
    run.handing_back = True
    run.stop_event.set()


async def hand_back(run: ResponseRun, publisher: Publisher) -> None:
    """Queue again a pane whose run here is over before it called its provider. Its log's
    last entry from here says it waits for a worker; only then is its row pending again
    (the next worker's entries follow in the same log, see worker/claim.py), and only then
    its task is sent."""
    publisher.hand_back(run, HANDED_BACK_MESSAGE)
    await run.ended.wait()
    await sync_to_async(requeue, thread_sensitive=False)(run.turn_id, run.response_id, run.seq)


def requeue(turn_id: int, response_id: int, seq: int) -> bool:
    """Make the streaming response pending again and send its turn's task for it alone;
    ``seq``: its log's last entry. False when it had ended meanwhile, or the task could not
    be sent (then it is ended with a sentence, rather than left pending with no task)."""
    if not Response.objects.filter(pk=response_id, status=Status.STREAMING).update(
        status=Status.PENDING
    ):
        return False
    try:
        # By name: the worker's wing never imports its door (playground.tasks).
        app.send_task("playground.run_turn", args=[turn_id, [response_id]])
    except (redis.RedisError, kombu.exceptions.OperationalError, OSError) as error:
        log.error("pane %s could not be queued again: %s", response_id, type(error).__name__)
        end_response(
            response_id,
            was=Status.PENDING,
            status=Status.INTERRUPTED,
            close_log=close_log_now(redis_client(), response_id, seq + 1),
            error=NOT_HANDED_BACK_MESSAGE,
            finish_reason="interrupted",
            input_tokens=0,
            output_tokens=0,
        )
        return False
    return True
