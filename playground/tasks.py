"""The worker's one door: the Celery tasks, and the web process's calls that enqueue them.

A task message carries ids only: never a key, never prompt text. The web process imports
this module to enqueue; the task bodies import :mod:`playground.worker` when they run, so
the web process never loads the worker's wing (a test checks ``sys.modules``).
"""

from __future__ import annotations

import threading
import uuid

from celery import shared_task

from playground.redis_sync import redis_client

# Claims run in the tasks' own threads, of which there are dozens; this many at once. Each
# is CPU-bound Python holding the GIL that the streaming loop needs: unbounded, a burst of
# Sends starved the loop (bench/streams.py, heavy: per-delta p99 264 -> 332 ms).
CLAIMS_AT_ONCE = threading.BoundedSemaphore(4)


@shared_task(name="playground.run_turn", acks_late=True, ignore_result=True)
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


def ask_credential_check(credential_id: int, timeout: float = 30.0) -> str:
    """Have a worker test a saved credential and wait for its sentence (the task carries
    the credential's id only; the row records whether it passed)."""
    reply_to = f"pg:conn:{uuid.uuid4().hex}"
    check_credential.delay(credential_id, reply_to)
    answer = redis_client().blpop([reply_to], timeout=timeout)
    if answer is None:
        return f"No worker answered within {timeout:.0f} s — is a worker running?"
    return answer[1].decode() if isinstance(answer[1], bytes) else str(answer[1])


def ask_connection_check(model_key: str, timeout: float = 30.0, owner_id: int | None = None) -> str:
    """Have a worker test ``model_key`` and wait for its sentence (the key never leaves the
    worker: the task message carries the model's key name, and for a model of a person's
    own endpoint that person's id, only). Blocks its thread for at most ``timeout``."""
    reply_to = f"pg:conn:{uuid.uuid4().hex}"
    check_connection.delay(model_key, reply_to, owner_id)
    answer = redis_client().blpop([reply_to], timeout=timeout)
    if answer is None:
        return f"{model_key}: no worker answered within {timeout:.0f} s — is a worker running?"
    return answer[1].decode() if isinstance(answer[1], bytes) else str(answer[1])
