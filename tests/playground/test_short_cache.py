"""The per-process cache of the catalog and the rate limits: a Send or a claim never waits
for the cache to be read again while the copy it holds is only a little old."""

from __future__ import annotations

import threading
import time

import pytest

from playground import catalog
from playground.catalog import CACHE_SECONDS, REFRESH_THREAD, STALE_SECONDS, ShortCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(catalog.time, "monotonic", clock)
    return clock


def test_an_old_copy_is_served_while_it_is_read_again_in_the_background(clock: Clock) -> None:
    version = {"n": 1}
    reads: list[str] = []
    release = threading.Event()

    def load() -> int:
        reads.append(threading.current_thread().name)
        if len(reads) > 1:
            assert release.wait(5)
        return version["n"]

    cache = ShortCache(load)
    assert cache.get() == 1
    version["n"] = 2
    clock.now += CACHE_SECONDS + 1

    assert cache.get() == 1  # at once, although the read in the background is held up
    assert cache.get() == 1  # and only one read is under way
    release.set()
    # The read starts a moment later: the Send or claim that asked for it has the CPU.
    time.sleep(catalog.REFRESH_DELAY_S / 4)
    assert len(reads) == 1
    for thread in threading.enumerate():
        if thread.name == REFRESH_THREAD:
            thread.join(5)
    assert cache.get() == 2
    assert len(reads) == 2
    assert reads[1] == REFRESH_THREAD != reads[0]  # the second read ran in a thread of its own


def test_a_very_old_copy_or_a_forgotten_one_is_read_again_by_the_caller(clock: Clock) -> None:
    version = {"n": 1}
    cache = ShortCache(lambda: version["n"])
    assert cache.get() == 1

    version["n"] = 2
    clock.now += STALE_SECONDS + 1
    assert cache.get() == 2

    version["n"] = 3
    cache.forget()
    assert cache.get() == 3
