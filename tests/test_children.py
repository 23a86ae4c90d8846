"""scripts/children.py with real processes: what a child that fails says, and that stopping
leaves no process behind. No database, no Redis (also with ``-p no:django``)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from scripts.children import (
    Child,
    ChildError,
    free_port,
    port_open,
    start,
    start_on_free_port,
    stop_all,
)

PYTHON = sys.executable


def python(tmp_path: Path, name: str, code: str) -> Child:
    """A Python child running ``code``, logging to tmp_path/name.log."""
    return start(name, [PYTHON, "-u", "-c", code], log=tmp_path / f"{name}.log")


def alive_in_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that have not exited (zombies do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def test_a_child_that_dies_at_start_says_so_with_the_end_of_its_log(tmp_path: Path) -> None:
    child = python(
        tmp_path,
        "broken",
        "import sys\nfor n in range(100): print('line', n)\n"
        "print('fatal: no such setting FOO'); sys.exit(3)",
    )
    with pytest.raises(ChildError) as caught:
        child.wait_for_port(free_port(), timeout=20)
    message = str(caught.value)
    assert message.startswith("broken exited with status 3 during start-up"), message
    assert "fatal: no such setting FOO" in message
    assert "line 99" in message
    assert "line 10\n" not in message  # the end of the log, not all of it
    assert "fatal: no such setting FOO" in caught.value.log
    assert not child.alive()
    assert child.process.returncode == 3  # reaped


def test_a_child_that_is_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    child = python(tmp_path, "slow", "import time\nprint('loading')\ntime.sleep(60)")
    started = time.monotonic()
    with pytest.raises(ChildError, match=r"slow was not ready within 0\.5 s") as caught:
        child.wait_for_log("ready", timeout=0.5)
    assert time.monotonic() - started < 10
    assert "loading" in str(caught.value)
    assert child.process.returncode == -signal.SIGTERM
    assert alive_in_group(child.pid) == []


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready')\ntime.sleep(60)"
    )
    with python(tmp_path, "stubborn", code) as child:
        child.wait_for_log("ready", timeout=20)
        started = time.monotonic()
        status = child.stop(timeout=0.5)
    assert status == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5
    assert not child.alive()


def test_stop_leaves_nothing_of_the_process_group(tmp_path: Path) -> None:
    # The child starts a grandchild that ignores SIGTERM, then ends on SIGTERM itself: the
    # grandchild would outlive it unless the group is killed.
    code = (
        "import subprocess, sys, time\n"
        "grandchild = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "time.sleep(0.3)\nprint('grandchild', grandchild.pid)\ntime.sleep(60)"
    )
    child = python(tmp_path, "parent", code)
    child.wait_for_log("grandchild", timeout=20)
    assert len(alive_in_group(child.pid)) == 2
    child.stop(timeout=5)
    assert child.process.returncode == -signal.SIGTERM  # it stopped when asked
    deadline = time.monotonic() + 5
    while alive_in_group(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive_in_group(child.pid) == []


def test_a_taken_port_is_tried_again_on_another(tmp_path: Path) -> None:
    ports: list[int] = []

    def launch(port: int) -> Child:
        ports.append(port)
        if len(ports) == 1:  # as a server says it when another process took the port
            code = "import sys\nprint('bind: Address already in use'); sys.exit(1)"
            return python(tmp_path, "taken", code).wait_for_port(port, timeout=20)
        argv = [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        server = start("http.server", argv, log=tmp_path / "http.log", port=port)
        return server.wait_for_url(f"http://127.0.0.1:{port}/", timeout=20)

    with start_on_free_port(launch) as server:
        assert len(ports) == 2
        assert server.port == ports[1]
        assert port_open(ports[1])
    assert not port_open(ports[1])


def test_a_failure_that_is_not_a_taken_port_is_not_retried(tmp_path: Path) -> None:
    tries: list[int] = []

    def launch(port: int) -> Child:
        tries.append(port)
        return python(tmp_path, "bad", "raise SystemExit(2)").wait_for_port(port, timeout=20)

    with pytest.raises(ChildError, match="exited with status 2"):
        start_on_free_port(launch)
    assert len(tries) == 1


def test_stop_all_stops_the_last_started_first(tmp_path: Path) -> None:
    stopped: list[str] = []
    children = []
    for name in ("redis", "worker", "web"):
        child = python(tmp_path, name, "import time\ntime.sleep(60)")
        child.add_cleanup(lambda name=name: stopped.append(name))
        children.append(child)
    stop_all([children[0], None, *children[1:]], timeout=5)
    assert stopped == ["web", "worker", "redis"]
    assert not any(child.alive() for child in children)


def test_a_missing_program_is_a_child_error(tmp_path: Path) -> None:
    with pytest.raises(ChildError, match="cannot run /nonexistent/server"):
        start("server", ["/nonexistent/server"], log=tmp_path / "server.log")


def test_a_child_stopped_for_now_starts_again_and_keeps_its_clean_ups_for_the_end(
    tmp_path: Path,
) -> None:
    kept = tmp_path / "data"
    kept.mkdir()
    first = python(tmp_path, "server", "import os, time; print(os.getpid()); time.sleep(60)")
    first.wait_for_log("\n")
    first.add_cleanup(kept.rmdir)
    first.stop_for_now()
    assert not first.alive()
    assert kept.exists()  # the clean-up waits for the last stop

    second = first.again()
    try:
        log = tmp_path / "server.log"  # the same log, appended to
        second.wait_until(lambda: log.read_text().count("\n") == 2, timeout=10, what="its pid")
        assert log.read_text().split() == [str(first.pid), str(second.pid)]
    finally:
        second.stop()
    assert not kept.exists()
