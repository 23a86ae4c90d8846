"""Celery tasks. A task message carries ids only: never a key, never prompt text."""

from __future__ import annotations

from celery import shared_task

from playground import worker_loop


@shared_task(name="playground.run_turn", acks_late=True, ignore_result=True)
def run_turn(turn_id: int) -> None:
    """Stream every pane of a turn; returns when all of them have ended."""
    from playground.runner import run_turn as run

    worker_loop.run(run(turn_id))


@shared_task(name="playground.check_connection", ignore_result=True)
def check_connection(model_key: str, reply_to: str) -> None:
    """Test one catalog model with the cheapest call; the sentence goes to ``reply_to``."""
    from playground.connection import run_check

    worker_loop.run(run_check(model_key, reply_to), timeout=60)
