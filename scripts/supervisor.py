"""A child process that is started again when it dies: ``make run``'s Celery worker and local
model server. Standard library only, like scripts/children.py.

    worker = Supervised("celery", lambda: start("celery", argv, log=...))
    with worker:
        while web.alive():
            worker.check()      # restarts it when it is due; raises GaveUp at the cap
            time.sleep(0.5)

After a death the child is started again after a pause that doubles with each death in a
row (1 s, 2 s, 4 s … up to 30 s), with a line saying so. A child that stayed up a whole
window (a minute) starts the count again. More than ``max_restarts`` deaths within one
window is a fault a restart will not mend (a broken configuration, a port taken): then
``check`` raises GaveUp, with the end of its log.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from scripts.children import Child, ChildError, describe_status

__all__ = ["GaveUp", "Supervised"]


class GaveUp(ChildError):
    """A supervised child died more often than its cap allows; it is not started again."""


class Supervised:
    """A child kept running by ``check``: ``launch`` starts it (and waits until it is ready,
    when it says how), and is called again after each death."""

    def __init__(
        self,
        name: str,
        launch: Callable[[], Child],
        *,
        say: Callable[[str], object] = print,
        first_pause: float = 1.0,
        longest_pause: float = 30.0,
        max_restarts: int = 5,
        window: float = 60.0,
        stop_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.launch = launch
        self.say = say
        self.first_pause = first_pause
        self.longest_pause = longest_pause
        self.max_restarts = max_restarts
        self.window = window
        self.clock = clock
        self.stop_timeout = stop_timeout
        self.restarts = 0  # in all
        self._deaths: deque[float] = deque()  # within the last window
        self._pause = first_pause
        self._due: float | None = None  # when a dead child is to be started again
        self._started_at = 0.0
        self._last_log = ""
        self.child: Child | None = None

    def start(self) -> Supervised:
        """Start it the first time (a failure here is the caller's: nothing is retried)."""
        self.child = self.launch()
        self._started_at = self.clock()
        return self

    def adopt(self, child: Child) -> Supervised:
        """Supervise ``child``, started already (by a launch that chose its port)."""
        self.child = child
        self._started_at = self.clock()
        return self

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def check(self) -> None:
        """Notice a death and schedule the restart, or restart it when the pause is over.
        Raises GaveUp once it died more than ``max_restarts`` times within ``window``."""
        now = self.clock()
        if self._due is None:
            if self.child is None or self.child.alive():
                return
            status = self.child.exit_status()
            self._last_log = self.child.log_tail()
            self.child.stop()  # reaps it, and whatever it left in its group
            self._died(now, f"{self.name} {describe_status(status or 0)}")
            return
        if now < self._due:
            return
        self._due = None
        self.restarts += 1
        try:
            self.child = self.launch()
        except ChildError as error:
            self.child = None
            self._last_log = error.log
            self._died(self.clock(), f"{self.name} did not start again: {error}")
            return
        self._started_at = self.clock()
        self.say(f"{self.name} started again (restart {self.restarts}).")

    def _died(self, now: float, what: str) -> None:
        if now - self._started_at >= self.window:
            self._pause = self.first_pause  # it had been up a while: not a crash loop
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > self.window:
            self._deaths.popleft()
        if len(self._deaths) > self.max_restarts:
            log = f"; the end of its log:\n{self._last_log}" if self._last_log else ""
            raise GaveUp(
                f"{what}. It died {len(self._deaths)} times within {self.window:g} s, so it "
                f"is not started again; fix the cause (its log says why) and start again"
                f"{log}",
                self._last_log,
            )
        self.say(f"{what}; starting it again in {self._pause:g} s.")
        self._due = now + self._pause
        self._pause = min(self._pause * 2, self.longest_pause)

    def stop(self) -> None:
        self._due = None
        if self.child is not None:
            self.child.stop(self.stop_timeout)

    def __enter__(self) -> Supervised:
        if self.child is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
