"""The worker's one door: the Celery tasks, and the web process's calls that enqueue them.

A task message carries ids only: never a key, never prompt text. The web process imports
this module to enqueue; the task bodies import :mod:`playground.worker` when they run, so
the web process never loads the worker's wing (a test checks ``sys.modules``).
"""

from __future__ import annotations

import threading
from typing import Any

import kombu.exceptions
import redis
from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.db import InterfaceError, OperationalError

from playground import connection_tests
from playground.connection_tests import Asked
from playground.live.response_end import end_response
from playground.models import Status

# Claims run in the tasks' own threads, of which there are dozens; this many at once. Each
# is CPU-bound Python holding the GIL that the streaming loop needs: unbounded, a burst of
# Sends starved the loop (bench/streams.py, heavy: per-delta p99 264 -> 332 ms).
CLAIMS_AT_ONCE = threading.BoundedSemaphore(4)


# The database away when a turn is claimed: the task is sent again later (after about 1,
# 2, 4 … 64 s, then every 2 minutes: some 10 minutes in all, each wait drawn at random up
# to it) rather than lost with its panes left pending. Each message waits in the worker's
# hands, counted by the broker as taken: a worker that dies meanwhile gives it back.
_DATABASE_AWAY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 120,
    "max_retries": 11,
}


@shared_task(name="playground.run_turn", acks_late=True, ignore_result=True, **_DATABASE_AWAY)
def run_turn(turn_id: int, response_ids: list[int] | None = None) -> None:
    """Stream every pane of a turn; returns when none of them streams any more: all have
    ended, or the rest wait for a slot or a rate limit, which the worker's loop holds without
    a thread (worker/thread_hold.py). ``response_ids``: the turn's responses, so the claim
    needs no query to find them (messages sent before they were added carry none)."""
    from playground.worker import event_loop
    from playground.worker.runner import claim_responses, stream_responses
    from playground.worker.thread_hold import run_while_streaming

    # The claim and the requests are built here, on this task's thread and its database
    # connection; the loop gets work that is ready to stream (two thread hops fewer
    # before the first request goes out).
    with CLAIMS_AT_ONCE:
        panes = claim_responses(turn_id, response_ids)
    if panes:
        run_while_streaming(panes, stream_responses(panes), event_loop.get_loop())


@shared_task(name="playground.run_rematch", acks_late=True, ignore_result=True)
def run_rematch(session_id: int, pane_ids: list[int], first_ids: list[int]) -> None:
    """Ask a rematch's new panes every turn in order (playground.rematch); ids only."""
    from playground.worker.rematch_run import run

    run(session_id, pane_ids, first_ids)


@shared_task(name="playground.check_connection", ignore_result=True)
def check_connection(model_key: str, reply_to: str, owner_id: int | None = None) -> None:
    """Test one model with the cheapest call; the sentence goes to ``reply_to``. A model of
    a person's own endpoint names its owner (an id: the worker reads the key itself)."""
    from playground.worker import event_loop
    from playground.worker.connection_check import run_check

    event_loop.run(run_check(model_key, reply_to, owner_id), timeout=60)


@shared_task(name="playground.check_credential", ignore_result=True)
def check_credential(credential_id: int, reply_to: str) -> None:
    """Test a saved credential (its id only: the worker opens it) and record the result."""
    from playground.worker import event_loop
    from playground.worker.connection_check import run_credential_check

    event_loop.run(run_credential_check(credential_id, reply_to), timeout=60)


@shared_task(name="playground.purge_deleted_session", ignore_result=True)
def purge_deleted_session(session_id: int) -> None:
    """Delete for good a session whose undo window has passed (scheduled when it is
    deleted; an undone or newer deletion is left alone)."""
    from playground.session_list import purge_overdue

    purge_overdue(session_id=session_id)


@worker_ready.connect
def start_sweeping(**_: object) -> None:
    """A worker that is ready sweeps, on its loop, for panes whose worker died while
    nobody watched them (playground/worker/sweep.py). Sent only in a worker process."""
    from playground.worker.sweep import start

    start()


@worker_shutting_down.connect
def hand_back_panes(**_: object) -> None:
    """A worker's warm shutdown (SIGTERM, Ctrl-C): the panes that wait (no call made yet)
    go back to the queue at once, for another worker; the panes streaming get
    PLAYGROUND_SHUTDOWN_GRACE_SECONDS to finish, then are ended "interrupted" with their
    text and settled (playground/worker/shutdown.py). Sent only in a worker process, in
    its main thread, which takes no task until this returns."""
    from django.conf import settings

    from playground.worker.shutdown import hand_back_after, hand_back_waiting_now

    hand_back_after(settings.PLAYGROUND_SHUTDOWN_GRACE_SECONDS)
    hand_back_waiting_now()


NOT_QUEUED = (
    "Redis did not take this answer for a worker, so nothing was asked and nothing is "
    "counted; ask again once it answers."
)


def hand_to_worker(response_ids: list[int], task: Any, *args: Any) -> None:
    """Send ``task`` for the saved answers ``response_ids`` (its message: ids only). When
    the broker (Redis) cannot take it, those answers end at once as errors saying so (no
    usage, their reservations given back: no task would ever claim them), and the
    broker's error goes on to the view (a 503 and a sentence: playground/database_away.py)."""
    try:
        task.delay(*args)
    except (redis.RedisError, kombu.exceptions.OperationalError):
        for pk in response_ids:
            end_response(
                pk,
                was=Status.PENDING,
                status=Status.ERROR,
                close_log=lambda _status: None,  # its log is in the Redis that is away
                error=NOT_QUEUED,
                finish_reason="error",
                input_tokens=0,
                output_tokens=0,
            )
        raise


def ask_credential_check(user_id: int, credential_id: int, back: str = "") -> Asked:
    """Have a worker test a saved credential, without waiting: the task carries the
    credential's id only, the row records whether it passed, and the sentence is read
    later by ``user_id`` (``connection_tests.answer``)."""
    try:
        token, reply_to = connection_tests.begin(user_id, back)
        check_credential.delay(credential_id, reply_to)
    except (redis.RedisError, kombu.exceptions.OperationalError, OSError):
        return Asked("", connection_tests.NOT_ASKED)
    return Asked(token)


def ask_connection_check(
    user_id: int, model_key: str, owner_id: int | None = None, back: str = ""
) -> Asked:
    """Have a worker test ``model_key``, without waiting (the key never leaves the worker:
    the task message carries the model's key name, and for a model of a person's own
    endpoint that person's id, only); the sentence is read later by ``user_id``."""
    try:
        token, reply_to = connection_tests.begin(user_id, back)
        check_connection.delay(model_key, reply_to, owner_id)
    except (redis.RedisError, kombu.exceptions.OperationalError, OSError):
        return Asked("", connection_tests.NOT_ASKED)
    return Asked(token)
