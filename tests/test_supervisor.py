"""scripts/supervisor.py with real processes: what `make run` does when its worker (or the
local model server, or Redis) dies. No database, no Redis."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.children import Child, start
from scripts.supervisor import GaveUp, Supervised

PYTHON = sys.executable


def launcher(tmp_path: Path, code: str) -> Callable[[], Child]:
    return lambda: start("worker", [PYTHON, "-u", "-c", code], log=tmp_path / "worker.log")


def check_until(supervised: Supervised, done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        supervised.check()
        time.sleep(0.01)


def test_a_killed_child_is_started_again_after_a_pause_with_a_line_saying_so(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    worker = Supervised(
        "celery worker",
        launcher(tmp_path, "import time; time.sleep(60)"),
        say=lines.append,
        first_pause=0.2,
    )
    with worker:
        first = worker.child
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        check_until(worker, lambda: worker.child is not first and worker.alive())
        assert time.monotonic() - killed_at >= 0.2
        assert lines == [
            "celery worker was killed by SIGKILL; starting it again in 0.2 s.",
            "celery worker started again (restart 1).",
        ]
        second = worker.child
    assert second is not None and not second.alive()  # leaving the block stops it
    assert first.process.returncode == -signal.SIGKILL  # reaped, not left a zombie


def test_the_pause_doubles_with_each_death_in_a_row(tmp_path: Path) -> None:
    lines: list[str] = []
    worker = Supervised(
        "celery worker",
        launcher(tmp_path, "import sys; sys.exit(3)"),
        say=lines.append,
        first_pause=0.05,
        max_restarts=10,
    )
    with worker:
        check_until(worker, lambda: worker.restarts == 3 and not worker.alive())
        check_until(worker, lambda: sum("starting it again" in line for line in lines) == 4)
    pauses = [line.rsplit(" in ", 1)[1] for line in lines if "starting it again" in line]
    assert pauses == ["0.05 s.", "0.1 s.", "0.2 s.", "0.4 s."]
    assert lines[0] == "celery worker exited with status 3; starting it again in 0.05 s."


def test_too_many_deaths_within_a_minute_give_up_loudly_with_its_log(tmp_path: Path) -> None:
    lines: list[str] = []
    worker = Supervised(
        "celery worker",
        launcher(tmp_path, "print('cannot reach the broker'); raise SystemExit(1)"),
        say=lines.append,
        first_pause=0.01,
        max_restarts=3,
    )
    with worker, pytest.raises(GaveUp) as gave_up:
        check_until(worker, lambda: False)
    message = str(gave_up.value)
    assert message.startswith("celery worker exited with status 1. It died 4 times within 60 s")
    assert "is not started again" in message
    assert message.endswith("cannot reach the broker")
    assert worker.restarts == 3
    assert not worker.alive()


def test_a_child_that_does_not_start_again_counts_as_a_death(tmp_path: Path) -> None:
    from scripts.children import ChildError

    attempts = []

    def launch() -> Child:
        attempts.append(1)
        if len(attempts) > 1:
            raise ChildError("local model server was not ready within 120 s", "no GGUF")
        return start("model", [PYTHON, "-c", "pass"], log=tmp_path / "model.log")

    lines: list[str] = []
    model = Supervised("local model server", launch, say=lines.append, first_pause=0.01)
    with model:
        check_until(model, lambda: len(attempts) == 3)
    assert lines[1] == (
        "local model server did not start again: local model server was not ready within "
        "120 s; starting it again in 0.02 s."
    )
