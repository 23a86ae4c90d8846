"""Coalesces every pane's deltas and writes them to the pane logs.

One publisher per worker process. A pane's first token is written at once; after that,
each pane is flushed at most once per window (40 ms at rest). All panes that have something
to say in a tick go out in one Redis pipeline, together with heartbeats and the check of the
stop flags. When the loop falls behind, the window widens (up to PLAYGROUND_FLUSH_MAX_MS) so
that Redis round trips do not pile up, and narrows again when it catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis
from django.conf import settings

from playground.live import pane_log
from playground.worker.pane_run import PaneRun

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.base_window = settings.PLAYGROUND_FLUSH_MS / 1000
        self.max_window = max(self.base_window, settings.PLAYGROUND_FLUSH_MAX_MS / 1000)
        self.window = self.base_window
        self.panes: dict[int, PaneRun] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_heartbeat = 0.0
        self._last_stop_check = 0.0
        self.ttl = settings.PLAYGROUND_LOG_TTL

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def start_pane(self, pane: PaneRun) -> None:
        """Take ``pane`` on: from now on its log is written by this publisher alone."""
        pane.started = time.monotonic()
        # No heartbeat now: the claim set one, good for HEARTBEAT_TTL_S; the next tick's
        # beat comes well within it. Beating here cost a Redis round trip on the loop for
        # every pane of a turn, just as the panes send their requests.
        self.panes[pane.response_id] = pane

    def add(self, pane: PaneRun, text: str = "", reasoning: str = "") -> None:
        """A piece of the answer's text or reasoning arrived."""
        first = pane.ttft_ms is None
        if first:
            pane.ttft_ms = max(0, pane.elapsed_ms() - pane.waited_ms)
        if text:
            pane.text.append(text)
        if reasoning:
            pane.reasoning.append(reasoning)
        pane.tokens += 1
        if first:
            self._wake.set()  # the first token goes out at once

    def set_status(self, pane: PaneRun, message: str) -> None:
        pane.status_message = message
        self._wake.set()

    async def flush_last(self, pane: PaneRun) -> int:
        """Write what the pane has not yet written and let go of it (no more heartbeats or
        stop checks); returns its last entry's number, after which its end entry goes."""
        pane.closing = True
        self._wake.set()
        await pane.flushed.wait()
        return pane.seq

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis hiccup: keep the loop alive, try again next tick
                log.exception("publisher tick failed")
                await asyncio.sleep(0.5)

    async def _tick(self) -> None:
        # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its own, so a
        # wake-up (a pane's first token) reached this task two loop iterations later, each
        # one behind whatever else was ready (under load, the other panes' reads).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.window):
                await self._wake.wait()
        self._wake.clear()
        started = time.monotonic()
        now = started
        due = [
            p
            for p in self.panes.values()
            if p.dirty
            and (p.flushed_at == 0.0 or now - p.flushed_at >= self.window * 0.9 or p.seq == 0)
            or p.closing
        ]
        heartbeat = now - self._last_heartbeat >= pane_log.HEARTBEAT_EVERY_S
        check_stops = now - self._last_stop_check >= 0.2 and bool(self.panes)
        if not (due or heartbeat or check_stops):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for pane in due:
                key = pane_log.log_key(pane.response_id)
                if pane.dirty:
                    pane.seq += 1
                    pipe.xadd(key, pane.take_entry(), id=pane_log.entry_id(pane.seq))  # type: ignore[arg-type]
                    if pane.seq <= 2:
                        pipe.expire(key, self.ttl)
            closing = [p for p in due if p.closing]
            watched = [p for p in self.panes.values() if not p.closing]
            if heartbeat:
                self._last_heartbeat = now
                for pane in watched:
                    pipe.set(
                        pane_log.heartbeat_key(pane.response_id), 1, ex=pane_log.HEARTBEAT_TTL_S
                    )
            check_stops = check_stops and bool(watched)
            if check_stops:
                self._last_stop_check = now
                pipe.mget([pane_log.stop_key(p.response_id) for p in watched])
            results = await pipe.execute()
        for pane in closing:
            # Its last text is written: no later tick may write to its log (its end entry
            # comes next, from the runner).
            if self.panes.get(pane.response_id) is pane:
                del self.panes[pane.response_id]
            pane.flushed.set()
        if check_stops:
            for pane, flag in zip(watched, results[-1], strict=True):
                if flag and not pane.stop_requested:
                    pane.stop_requested = True
                    pane.stop_event.set()
        self._adapt(time.monotonic() - started)

    def _adapt(self, spent: float) -> None:
        """Widen the window when a tick's work takes a large share of it; narrow it back."""
        if spent > self.window * 0.5:
            self.window = min(self.max_window, self.window * 1.5)
        elif spent < self.window * 0.2 and self.window > self.base_window:
            self.window = max(self.base_window, self.window * 0.9)
