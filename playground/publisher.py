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
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings

from playground import panelog

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PaneBuffer:
    """What one streaming pane has produced but not yet written."""

    response_id: int
    started: float  # time.monotonic() when the pane started
    seq: int = 0
    text: str = ""
    reasoning: str = ""
    tokens: int = 0
    ttft_ms: int | None = None  # from the call, after any wait
    waited_ms: int = 0  # before the call: the endpoint's slot, the key's rate limit
    status_message: str | None = None
    stop_requested: bool = False
    stop_event: asyncio.Event | None = None
    flushed_at: float = 0.0
    # Set by write_end: the next tick writes what is left and then the end entry, so every
    # entry of a pane is written by the one publisher task, in order.
    end_status: str | None = None
    end_written: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.stop_event = asyncio.Event()
        self.end_written = asyncio.Event()

    def elapsed_ms(self, now: float | None = None) -> int:
        """Milliseconds since the pane started (``now``: a time.monotonic() already read)."""
        return int(((time.monotonic() if now is None else now) - self.started) * 1000)

    @property
    def dirty(self) -> bool:
        return bool(self.text or self.reasoning or self.status_message is not None)

    def take_entry(self) -> dict[str, str | int]:
        """The fields of the next log entry, and the buffer emptied."""
        now = time.monotonic()
        entry: dict[str, str | int]
        if self.text or self.reasoning:
            entry = {
                "k": "d",
                "t": self.text,
                "r": self.reasoning,
                "n": self.tokens,
                "ms": self.elapsed_ms(now),
            }
            if self.ttft_ms is not None:
                entry["ttft"] = self.ttft_ms
            if self.waited_ms:
                entry["w"] = self.waited_ms
            self.text = self.reasoning = ""
            self.status_message = None
        else:
            entry = {"k": "s", "msg": self.status_message or ""}
            self.status_message = None
        self.flushed_at = now
        return entry


class Publisher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.base_window = settings.PLAYGROUND_FLUSH_MS / 1000
        self.max_window = max(self.base_window, settings.PLAYGROUND_FLUSH_MAX_MS / 1000)
        self.window = self.base_window
        self.panes: dict[int, PaneBuffer] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_heartbeat = 0.0
        self._last_stop_check = 0.0
        self.ttl = settings.PLAYGROUND_LOG_TTL
        self.ticks = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def register(self, response_id: int) -> PaneBuffer:
        buffer = PaneBuffer(response_id, time.monotonic())
        # No heartbeat now: the claim set one (load_jobs), good for HEARTBEAT_TTL_S; the
        # next tick's beat comes well within it. Beating here cost a Redis round trip on
        # the loop for every pane of a turn, just as the panes send their requests.
        self.panes[response_id] = buffer
        return buffer

    def unregister(self, buffer: PaneBuffer) -> None:
        self.panes.pop(buffer.response_id, None)

    def add_text(self, buffer: PaneBuffer, text: str, reasoning: str = "") -> None:
        first = buffer.ttft_ms is None
        if first:
            buffer.ttft_ms = max(0, buffer.elapsed_ms() - buffer.waited_ms)
        buffer.text += text
        buffer.reasoning += reasoning
        buffer.tokens += 1
        if first:
            self._wake.set()  # the first token goes out at once

    def set_status(self, buffer: PaneBuffer, message: str) -> None:
        buffer.status_message = message
        self._wake.set()

    async def write_end(self, buffer: PaneBuffer, status: str) -> None:
        """Write the pane's last text and its end entry (``status``), and wait until they
        are in Redis. The publisher task does the writing, after any tick in flight."""
        assert buffer.end_written is not None
        buffer.end_status = status
        self._wake.set()
        await buffer.end_written.wait()

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
            b
            for b in self.panes.values()
            if b.dirty
            and (b.flushed_at == 0.0 or now - b.flushed_at >= self.window * 0.9 or b.seq == 0)
            or b.end_status is not None
        ]
        heartbeat = now - self._last_heartbeat >= panelog.HEARTBEAT_EVERY_S
        check_stops = now - self._last_stop_check >= 0.2 and bool(self.panes)
        if not (due or heartbeat or check_stops):
            return
        watched = list(self.panes.values())
        async with self.redis.pipeline(transaction=False) as pipe:
            ending = [b for b in due if b.end_status is not None]
            for buffer in due:
                key = panelog.log_key(buffer.response_id)
                if buffer.dirty:
                    buffer.seq += 1
                    pipe.xadd(key, buffer.take_entry(), id=panelog.entry_id(buffer.seq))  # type: ignore[arg-type]
                if buffer.end_status is not None:
                    buffer.seq += 1
                    end = {"k": "e", "st": buffer.end_status}
                    pipe.xadd(key, end, id=panelog.entry_id(buffer.seq))  # type: ignore[arg-type]
                    pipe.delete(panelog.heartbeat_key(buffer.response_id))
                if buffer.seq <= 2 or buffer.end_status is not None:
                    pipe.expire(key, self.ttl)
            watched = [b for b in watched if b.end_status is None]
            if heartbeat:
                self._last_heartbeat = now
                for buffer in watched:
                    pipe.set(
                        panelog.heartbeat_key(buffer.response_id), 1, ex=panelog.HEARTBEAT_TTL_S
                    )
            check_stops = check_stops and bool(watched)
            if check_stops:
                self._last_stop_check = now
                pipe.mget([panelog.stop_key(b.response_id) for b in watched])
            results = await pipe.execute()
        for buffer in ending:
            assert buffer.end_written is not None
            # Its end is its last entry: no later tick may write it again (the pane's
            # unregister may come after the next tick).
            if self.panes.get(buffer.response_id) is buffer:
                del self.panes[buffer.response_id]
            buffer.end_written.set()
        if check_stops:
            for buffer, flag in zip(watched, results[-1], strict=True):
                if flag and not buffer.stop_requested:
                    buffer.stop_requested = True
                    assert buffer.stop_event is not None
                    buffer.stop_event.set()
        self.ticks += 1
        self._adapt(time.monotonic() - started)

    def _adapt(self, spent: float) -> None:
        """Widen the window when a tick's work takes a large share of it; narrow it back."""
        if spent > self.window * 0.5:
            self.window = min(self.max_window, self.window * 1.5)
        elif spent < self.window * 0.2 and self.window > self.base_window:
            self.window = max(self.base_window, self.window * 0.9)
