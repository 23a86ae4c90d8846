"""The database away when a worker claims a turn: the task is sent again, with waits that
double up to two minutes, for at most some ten minutes in all (it gave up after about 30
seconds, leaving the turn pending with no task anywhere)."""

from __future__ import annotations

from typing import Any

import pytest
from celery.utils.time import get_exponential_backoff_interval
from django.db import OperationalError

from playground import tasks
from playground.worker import runner


def refusing(times: int, tries: list[int]) -> Any:
    def claim(turn_id: int, response_ids: list[int] | None = None) -> list[Any]:
        tries.append(turn_id)
        if len(tries) <= times:
            raise OperationalError("server closed the connection unexpectedly")
        return []  # claimed: nothing left to stream in this test

    return claim


def test_a_claim_the_database_refuses_is_tried_again_for_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = tasks.run_turn
    tries: list[int] = []
    monkeypatch.setattr(runner, "claim_responses", refusing(task.max_retries, tries))

    # Eagerly run, Celery sends each retry at once; the worker waits its countdown.
    assert task.apply(args=(7, [1])).successful()
    assert len(tries) == task.max_retries + 1

    waits = [
        get_exponential_backoff_interval(
            factor=1, retries=n, maximum=task.retry_backoff_max, full_jitter=False
        )
        for n in range(task.max_retries)
    ]
    assert waits[:7] == [1, 2, 4, 8, 16, 32, 64] and max(waits) == 120
    assert 9 * 60 < sum(waits) < 11 * 60  # at most; each drawn at random up to its bound


def test_a_claim_refused_past_its_retries_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    task = tasks.run_turn
    tries: list[int] = []
    monkeypatch.setattr(runner, "claim_responses", refusing(task.max_retries + 1, tries))

    result = task.apply(args=(7, [1]))

    assert result.failed() and isinstance(result.result, OperationalError)
    assert len(tries) == task.max_retries + 1
