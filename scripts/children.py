"""Child processes: start one with its log file, wait until it is ready, stop it and every
process it started. The one way ``make run``, the tests and the benchmarks launch servers.

Standard library only: scripts/services.py runs before anything else is installed.

    with contextlib.ExitStack() as running:
        port = free_port()
        web = running.enter_context(start("daphne", argv, log=logs / "daphne.log", env=env))
        web.wait_for_port(port)
        ...
    # leaving the block stops them, the last one started first

Every child runs in a session, so a process group, of its own: a terminal's Ctrl-C reaches
only the parent, which stops its children in order, and ``stop()`` signals the whole group,
so nothing a child started is left behind. On Linux a child is also signalled when the
parent dies, even by SIGKILL. A ``wait_for_*`` that fails stops the child and raises
ChildError with the end of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DISCARD",
    "LOOPBACK",
    "Child",
    "ChildError",
    "describe_status",
    "free_port",
    "port_open",
    "start",
    "start_on_free_port",
    "stop_all",
    "url_answers",
]

LOOPBACK = "127.0.0.1"
# ``log=DISCARD``: the child's output is thrown away.
DISCARD = Path(os.devnull)


class ChildError(RuntimeError):
    """A child process could not be started, or did not become ready.

    ``log`` is the end of its log ("" when there is none).
    """

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it).

    Another process can take it before the child binds it: ``start_on_free_port`` then
    tries another.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Loopback servers are reached directly, whatever http_proxy says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def url_answers(url: str, timeout: float = 2.0) -> bool:
    """True when GET ``url`` gets an HTTP answer, whatever its status."""
    try:
        with _NO_PROXY.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _port_taken(log: str) -> bool:
    text = log.lower()
    return "address already in use" in text or "could not bind" in text


def describe_status(status: int) -> str:
    """How a process ended, from its exit status (-N: killed by signal N)."""
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-status).name}"
        return f"was killed by signal {-status}"
    return f"exited with status {status}"


class Child:
    """A process started by ``start``: its own process group, its output in ``log_path``.

    ``port`` and ``url`` say where it serves, when its starter knows. ``stop()`` may be
    called more than once; usable as a context manager.
    """

    def __init__(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        *,
        log_path: Path | None,
        stop_signal: int,
        port: int | None = None,
        url: str = "",
    ) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.port = port
        self.url = url
        self.host = LOOPBACK
        self._cleanups: list[Callable[[], object]] = []
        # What starts the same command again (``start`` sets it): see ``again``.
        self.relaunch: Callable[[], Child] | None = None
        self._status: int | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_status(self) -> int | None:
        """None while it runs; else its exit status, or -N when signal N killed it.

        Looks without reaping it: until ``stop()`` reaps it, its process id, which is also
        its group's id, cannot be given to another process, so signalling the group can
        never reach a stranger."""
        if self._status is None:
            if self.process.returncode is not None:
                self._status = self.process.returncode
            else:
                try:
                    info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:  # reaped already
                    info = None
                    self._status = self.process.poll()
                if info is not None:
                    exited = info.si_code == os.CLD_EXITED
                    self._status = info.si_status if exited else -info.si_status
        return self._status

    def alive(self) -> bool:
        return self.exit_status() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of its log, for error messages."""
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def add_cleanup(self, cleanup: Callable[[], object]) -> None:
        """Run ``cleanup`` after the child has stopped (the last added first)."""
        self._cleanups.append(cleanup)

    # ------------------------------------------------------------------ readiness

    def wait_until(self, check: Callable[[], bool], *, timeout: float, what: str) -> Child:
        """Poll ``check`` until it is true and return the child. When the child dies first,
        or ``timeout`` seconds pass, or the wait is interrupted, stop it; ChildError says
        which, with the end of its log. ``what`` names what was awaited."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        try:
            while True:
                status = self.exit_status()
                if status is not None:
                    problem = f"{describe_status(status)} during start-up"
                    break
                if check():
                    return self
                if time.monotonic() > deadline:
                    problem = f"was not ready within {timeout:g} s"
                    break
                time.sleep(delay)
                delay = min(delay * 1.5, 0.25)
        except BaseException:
            self.stop()
            raise
        self.stop()
        log = self.log_tail()
        if self.log_path is None:
            where = ""
        elif log:
            where = f"; the end of {self.log_path}:\n{log}"
        else:
            where = f"; {self.log_path} says nothing"
        raise ChildError(f"{self.name} {problem} (waiting for {what}){where}", log)

    def wait_for_port(
        self, port: int | None = None, *, host: str = LOOPBACK, timeout: float = 30.0
    ) -> Child:
        """Wait until something accepts connections on host:port (default: its port)."""
        port = self.port if port is None else port
        if port is None:
            raise ValueError(f"{self.name}: which port?")
        return self.wait_until(
            lambda: port_open(port, host), timeout=timeout, what=f"{host}:{port} to accept"
        )

    def wait_for_url(self, url: str | None = None, *, timeout: float = 30.0) -> Child:
        """Wait until GET ``url`` (default: its url) gets an HTTP answer."""
        url = url or self.url
        return self.wait_until(lambda: url_answers(url), timeout=timeout, what=f"GET {url}")

    def wait_for_log(self, needle: str, *, timeout: float = 30.0) -> Child:
        """Wait until its log contains ``needle``."""
        if self.log_path is None:
            raise ValueError(f"{self.name} has no log to read")
        log_path, wanted = self.log_path, needle.encode()

        def written() -> bool:
            try:
                return wanted in log_path.read_bytes()
            except OSError:
                return False

        return self.wait_until(written, timeout=timeout, what=f"{needle!r} in its log")

    # ------------------------------------------------------------------ stopping

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def _exits_within(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL its process group now, as a crash would end it (``stop()`` reaps it)."""
        if self.process.returncode is None:
            self._signal_group(signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send ``stop_signal`` to its process group; SIGKILL the group if it has not
        exited after ``timeout`` seconds, and whatever it left in the group once it has.
        Then run the clean-ups. Returns its exit status (None if it could not be reaped)."""
        with self._lock:
            if self._stopped:
                return self.process.returncode
            self._stopped = True
        try:
            if self.process.returncode is None:
                if self.alive():
                    self._signal_group(self.stop_signal)
                    if not self._exits_within(timeout):
                        self._signal_group(signal.SIGKILL)
                        self._exits_within(5)
                self._signal_group(signal.SIGKILL)  # what it started and left behind
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
        finally:
            for cleanup in reversed(self._cleanups):
                with contextlib.suppress(Exception):
                    cleanup()
        return self.process.returncode

    def stop_for_now(self, timeout: float = 10.0) -> int | None:
        """``stop()``, but its clean-ups (a server's data directory, say) are kept for the
        child that ``again()`` starts in its place."""
        with self._lock:
            kept, self._cleanups = self._cleanups, []
        status = self.stop(timeout)
        self._cleanups = kept
        return status

    def again(self) -> Child:
        """Start the same command once more (its arguments, log, directory, environment and
        user), after ``stop_for_now``; the new child takes over the clean-ups. If it cannot
        start, they are run now."""
        if self.relaunch is None or not self._stopped:
            raise ChildError(f"{self.name}: again() needs a child of start() that has stopped")
        kept, self._cleanups = self._cleanups, []
        try:
            child = self.relaunch()
        except BaseException:
            for cleanup in reversed(kept):
                with contextlib.suppress(Exception):
                    cleanup()
            raise
        child._cleanups = kept
        return child

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        status = self.exit_status()
        state = "running" if status is None else describe_status(status)
        return f"<Child {self.name} pid={self.pid} {self.url or self.port or ''} {state}>"


def _parent_death_signal(sig: int) -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to send ``sig`` to the child when we die.

    So a run killed with SIGKILL does not leave servers behind. Only offered in the main
    thread: the kernel sends the signal when the *thread* that forked exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), sig)

    return preexec


def start(
    name: str,
    argv: Sequence[str],
    *,
    log: str | os.PathLike[str] | None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    death_signal: int | None = None,
    port: int | None = None,
    url: str = "",
) -> Child:
    """Start ``argv`` in a session of its own, stdin from /dev/null.

    ``log``: the file its stdout and stderr are appended to; None: ours (a terminal's);
    ``DISCARD``: nowhere. ``user``: run as that user (we are root). ``stop_signal`` is what
    ``stop()`` sends first; ``death_signal`` (default ``stop_signal``) what Linux sends it
    if we die. ``port`` and ``url`` are where it will serve, for its ``wait_for_*``.
    """
    as_user: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        as_user.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    log_path = Path(log) if log is not None else None
    with contextlib.ExitStack() as files:
        output = None if log_path is None else files.enter_context(open(log_path, "ab"))
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=None if output is None else subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_parent_death_signal(death_signal or stop_signal),
                **as_user,
            )
        except OSError as error:
            raise ChildError(f"{name}: cannot run {argv[0]}: {error}") from error
    child = Child(name, process, log_path=log_path, stop_signal=stop_signal, port=port, url=url)
    child.relaunch = functools.partial(
        start,
        name,
        argv,
        log=log,
        cwd=cwd,
        env=env,
        user=user,
        stop_signal=stop_signal,
        death_signal=death_signal,
        port=port,
        url=url,
    )
    return child


def start_on_free_port(launch: Callable[[int], Child], *, attempts: int = 3) -> Child:
    """``launch(port)`` on a free loopback port: it starts a child there and waits until it
    is ready. When the child died because another process took the port in between
    (its log says so), try again with another port."""
    for attempt in range(1, attempts + 1):
        try:
            return launch(free_port())
        except ChildError as error:
            if attempt == attempts or not _port_taken(error.log):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def stop_all(children: Iterable[Child | None], timeout: float = 10.0) -> None:
    """Stop them one by one, the last one first (those that depend on others were started
    after them). Nones are skipped."""
    for child in reversed(list(children)):
        if child is not None:
            child.stop(timeout)
