"""Celery tasks. A task message carries ids only: never a key, never prompt text."""

from __future__ import annotations

import threading

from celery import shared_task

from playground import worker_loop

# Claims run in the tasks' own threads, of which there are dozens; this many at once. Each
# is CPU-bound Python holding the GIL that the streaming loop needs: unbounded, a burst of
# Sends starved the loop (bench/streams.py, heavy: per-delta p99 264 -> 332 ms).
CLAIMS_AT_ONCE = threading.BoundedSemaphore(4)


@shared_task(name="playground.run_turn", acks_late=True, ignore_result=True)
def run_turn(turn_id: int, response_ids: list[int] | None = None) -> None:
    """Stream every pane of a turn; returns when all of them have ended. ``response_ids``:
    the turn's responses, so the claim needs no query to find them (messages sent before
    they were added carry none)."""
    from playground.runner import load_jobs, run_jobs

    # The claim and the requests are built here, on this task's thread and its database
    # connection; the loop gets work that is ready to stream (two thread hops fewer
    # before the first request goes out).
    with CLAIMS_AT_ONCE:
        jobs = load_jobs(turn_id, response_ids)
    if jobs:
        worker_loop.run(run_jobs(jobs))


@shared_task(name="playground.check_connection", ignore_result=True)
def check_connection(model_key: str, reply_to: str, owner_id: int | None = None) -> None:
    """Test one model with the cheapest call; the sentence goes to ``reply_to``. A model of
    a person's own endpoint names its owner (an id: the worker reads the key itself)."""
    from playground.connection import run_check

    worker_loop.run(run_check(model_key, reply_to, owner_id), timeout=60)
