"""Coalesces every pane's deltas and writes them to the response logs.

One publisher per worker process. A pane's first token is written at once; after that,
each response is flushed at most once per window (40 ms at rest). All that have something
to say in a tick go out in one Redis pipeline, together with heartbeats and the check of the
stop flags. About once a second, what each pane's log holds is also written to its row (a
checkpoint, worker/checkpoint.py), in a thread, one statement for all. When the loop falls
behind, the window widens (up to PLAYGROUND_FLUSH_MAX_MS) so that Redis round trips do not
pile up, and narrows again when it catches up.

Redis away or restarted: the panes go on streaming into their runs meanwhile, and a tick
that failed is tried again every RETRY_S. Each run remembers what every entry of its log
held (``ResponseRun.marks``), so once Redis answers the publisher reads how far each log
goes and writes again what it lacks, under the same numbers, before anything new: a page
that had shown entry N then reads N+1 on, whether Redis kept the log, lost its last
second, or came back empty. An entry after the first is added only to a log that exists
(NOMKSTREAM), so a log lost without an error seen (another client met the broken
connection first) is noticed at the next write rather than written with a hole. The
heartbeats go out at the first tick that works, well within the watchdog's two looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings

from playground.live import response_log
from playground.live.response_end import CloseLog
from playground.worker.checkpoint import CHECKPOINT_EVERY_S, save_partial
from playground.worker.response_run import ResponseRun

log = logging.getLogger(__name__)

RETRY_S = 0.25  # after a tick that Redis failed


class Publisher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.base_window = settings.PLAYGROUND_FLUSH_MS / 1000
        self.max_window = max(self.base_window, settings.PLAYGROUND_FLUSH_MAX_MS / 1000)
        self.window = self.base_window
        self.runs: dict[int, ResponseRun] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_heartbeat = 0.0
        self._last_stop_check = 0.0
        self._last_checkpoint = 0.0
        self._checkpointing: asyncio.Task[None] | None = None
        self.ttl = settings.PLAYGROUND_LOG_TTL
        self.redis_away = False  # the last tick failed

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def begin(self, run: ResponseRun) -> None:
        """Take ``run`` on: from now on its log is written by this publisher alone."""
        run.started = time.monotonic()
        # No heartbeat now: the claim set one, good for HEARTBEAT_TTL_S; the next tick's
        # beat comes well within it. Beating here cost a Redis round trip on the loop for
        # every pane of a turn, just as the panes send their requests.
        self.runs[run.response_id] = run

    def add(self, run: ResponseRun, text: str = "", reasoning: str = "") -> None:
        """A piece of the answer's text or reasoning arrived."""
        first = run.ttft_ms is None
        if first:
            run.ttft_ms = max(0, run.elapsed_ms() - run.waited_ms)
        if text:
            run.text.append(text)
        if reasoning:
            run.reasoning.append(reasoning)
        run.tokens += 1
        if first:
            self._wake.set()  # the first token goes out at once

    def set_status(self, run: ResponseRun, message: str) -> None:
        run.status_message = message
        self._wake.set()

    def close(self, run: ResponseRun, status: str) -> None:
        """Close the run's log: the next tick writes what it has not yet written and then
        its end entry (``status``; "" when its row was ended by someone else), in the one
        pipeline of every run's news, and sets ``run.ended``."""
        run.end_status = status
        self.runs[run.response_id] = run  # also one let go of (drop) while its row was written
        self._wake.set()

    def hand_back(self, run: ResponseRun, message: str) -> None:
        """Let go of a run that goes back to the queue (worker/shutdown.py): the next tick
        writes ``message`` as its status line, with no end entry, and sets ``run.ended``;
        from then on this publisher writes nothing more to its log."""
        run.status_message = message
        run.leaving = True
        self._wake.set()

    def drop(self, run: ResponseRun) -> None:
        """Let go of the run without closing its log: no more heartbeats, so the watchdog
        ends it with what its log holds (its row could not be written)."""
        if self.runs.get(run.response_id) is run:
            del self.runs[run.response_id]

    def close_soon(self, run: ResponseRun) -> CloseLog:
        """:meth:`close` for :func:`~playground.live.response_end.end_response`, which
        runs in another thread (it writes the row first)."""
        loop = asyncio.get_running_loop()

        def close(status: str) -> None:
            loop.call_soon_threadsafe(self.close, run, status)

        return close

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: keep the loop alive, try again
                self._failed(error)
                await asyncio.sleep(RETRY_S)
            else:
                if self.redis_away:
                    self.redis_away = False
                    log.warning("Redis answers again")

    def _failed(self, error: Exception) -> None:
        """A tick failed: some of its writes may be lost (Redis restarted) or made (the
        answer lost): every log is read again before the next write, and the heartbeats
        go out at the next tick that works."""
        if not isinstance(error, redis.RedisError | OSError):
            log.exception("publisher tick failed")
        elif not self.redis_away:  # once an outage
            self.redis_away = True
            log.warning("Redis does not answer (%s); the answers go on", error)
        for run in self.runs.values():
            run.restore = True
        self._last_heartbeat = 0.0

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
            for p in self.runs.values()
            if p.dirty
            and (p.flushed_at == 0.0 or now - p.flushed_at >= self.window * 0.9 or p.seq == 0)
            or p.end_status is not None
            or p.leaving
        ]
        heartbeat = now - self._last_heartbeat >= response_log.HEARTBEAT_EVERY_S
        check_stops = now - self._last_stop_check >= 0.2 and bool(self.runs)
        if now - self._last_checkpoint >= CHECKPOINT_EVERY_S:
            self._checkpoint(now)
        if not (due or heartbeat or check_stops):
            return
        if any(run.restore for run in self.runs.values()):
            await self._restore_logs()
        # (pipeline index of an XADD that needs its log to exist, its run)
        appended: list[tuple[int, ResponseRun]] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for run in due:
                key = response_log.log_key(run.response_id)
                if run.dirty:
                    seq, entry = run.take_entry()
                    if seq > 1:
                        appended.append((len(pipe), run))
                    pipe.xadd(key, entry, id=response_log.entry_id(seq), nomkstream=seq > 1)  # type: ignore[arg-type]
                    if seq <= 2:
                        pipe.expire(key, self.ttl)
                if run.end_status is not None and not run.end_seq:
                    # Added even to a log Redis lost: its readers then show the row.
                    response_log.add_end(pipe, run.response_id, run.take_end(), run.end_status)
            closing = [p for p in due if p.end_seq or p.leaving]
            watched = [p for p in self.runs.values() if p.end_status is None and not p.leaving]
            if heartbeat:
                self._last_heartbeat = now
                for run in watched:
                    pipe.set(
                        response_log.heartbeat_key(run.response_id),
                        1,
                        ex=response_log.HEARTBEAT_TTL_S,
                    )
            check_stops = check_stops and bool(watched)
            if check_stops:
                self._last_stop_check = now
                pipe.mget([response_log.stop_key(p.response_id) for p in watched])
            results = await pipe.execute()
        for index, run in appended:
            if results[index] is None:  # its log is gone: written again at the next tick
                run.restore = True
                self._wake.set()
        for run in closing:
            # Its end (or, handed back, its last status line) is its last entry here: no
            # later tick may write to its log.
            if self.runs.get(run.response_id) is run:
                del self.runs[run.response_id]
            run.ended.set()
        if check_stops:
            for run, flag in zip(watched, results[-1], strict=True):
                if flag and not run.stop_requested:
                    run.stop_requested = True
                    run.stop_event.set()
        self._adapt(time.monotonic() - started)

    async def _restore_logs(self) -> None:
        """Make every log that may lack entries hold each one its run numbered: read how
        far it goes, write the rest again under the same numbers (a status line, a delta
        and the end as they were). An entry someone else wrote meanwhile (the watchdog's
        end, when this worker was taken for dead) is left as it is."""
        runs = [run for run in self.runs.values() if run.restore]
        async with self.redis.pipeline(transaction=False) as pipe:
            for run in runs:
                pipe.xrevrange(response_log.log_key(run.response_id), count=1)
            lasts = await pipe.execute()
        written = 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for run, last in zip(runs, lasts, strict=True):
                key = response_log.log_key(run.response_id)
                have = response_log.seq_of(last[0][0]) if last else 0
                # Entries before this run's first are its earlier worker's: not ours to write.
                for seq in range(max(have, run.base_seq) + 1, run.seq + 1):
                    if seq == run.end_seq and run.end_status is not None:
                        response_log.add_end(pipe, run.response_id, seq, run.end_status)
                    else:
                        pipe.xadd(key, run.entry(seq), id=response_log.entry_id(seq))  # type: ignore[arg-type]
                    written += 1
                if have < run.seq:
                    pipe.expire(key, self.ttl)
            # An id taken meanwhile fails alone; nothing is left to write to that log.
            await pipe.execute(raise_on_error=False)
        for run in runs:
            run.restore = False
        if written:
            log.warning("wrote %s entries again to %s answers' logs", written, len(runs))

    def _checkpoint(self, now: float) -> None:
        """Write what each streaming pane's log holds to its row, in a thread, one statement
        for all (worker/checkpoint.py); skipped while the last one is still being written."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._last_checkpoint = now
        runs = [p for p in self.runs.values() if p.end_status is None]
        parts = [part for part in (run.checkpoint() for run in runs) if part is not None]
        if parts:
            self._checkpointing = asyncio.get_running_loop().create_task(
                self._save_partial(runs, parts)
            )

    async def _save_partial(
        self, runs: list[ResponseRun], parts: list[tuple[int, str, str]]
    ) -> None:
        try:
            await sync_to_async(save_partial, thread_sensitive=False)(parts)
        except Exception as error:  # the database away: the next second tries again
            log.warning("checkpoint of %s panes failed: %s", len(parts), type(error).__name__)
            for run in runs:
                run.checkpointed = (0, 0)

    def _adapt(self, spent: float) -> None:
        """Widen the window when a tick's work takes a large share of it; narrow it back."""
        if spent > self.window * 0.5:
            self.window = min(self.max_window, self.window * 1.5)
        elif spent < self.window * 0.2 and self.window > self.base_window:
            self.window = max(self.base_window, self.window * 0.9)
