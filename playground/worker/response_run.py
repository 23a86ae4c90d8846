"""One pane while it streams in this worker: the one object that holds its state.

The claim (:func:`playground.worker.runner.claim_responses`) makes it with what the call needs;
the runner adds what the provider sends; the publisher writes what is new to the pane's
log; at the end the runner's row comes from it.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from playground.catalog import CatalogModel, Limits
from playground.models import Status
from providers.base import ChatRequest, Usage


@dataclass(eq=False)
class ResponseRun:
    response_id: int
    model: CatalogModel | None
    request: ChatRequest
    display_name: str
    limits: Limits = field(default_factory=Limits)
    slot_held: bool = False  # the claim took the endpoint's slot already
    refusal: str = ""  # why the claim found this pane must not run (its error sentence)
    # Someone typed the base URL (a person's endpoint, a catalog entry edited in admin):
    # the hosts it may reach although private; None: the provider's or operator's URL.
    egress_hosts: list[str] | None = None
    user_base_url: bool = False  # a person supplied the base URL: check egress before calling
    person: int = 0  # whose turn it is (the session's owner): their share of an endpoint
    turn_id: int = 0  # its turn (a pane handed back is queued again as its turn's task)
    # Handed back to the queue, rather than left to end "interrupted", when the worker
    # stops before its call (worker/shutdown.py); a rematch's panes are not.
    requeue: bool = True

    # The answer so far. Text and reasoning are kept as the pieces that arrived; the log
    # has had the first ``logged_text`` / ``logged_reasoning`` of them.
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str = ""
    error: str = ""
    status: str = Status.DONE
    tokens: int = 0  # pieces of text or reasoning received

    # Timing: ``started`` is time.monotonic() when the pane started streaming, ``calling_at``
    # when its call began (its slot and rate limit admitted; None before): the longest an
    # answer may run counts from then, the longest a pane may wait from ``started``.
    started: float = 0.0
    calling_at: float | None = None
    ttft_ms: int | None = None  # from the call, after any wait
    waited_ms: int = 0  # before the call: the endpoint's slot, the key's rate limit

    # The response's log, written by the publisher alone.
    seq: int = 0  # the last entry numbered (written, or to be written again: ``restore``)
    logged_text: int = 0
    logged_reasoning: int = 0
    status_message: str | None = None
    flushed_at: float = 0.0
    # What the last checkpoint in the database holds: (pieces of text, of reasoning).
    checkpointed: tuple[int, int] = (0, 0)
    stop_requested: bool = False
    shutting_down: bool = False  # the worker is stopping: end it "interrupted" (worker/shutdown.py)
    # The worker is stopping before this pane called its provider: it goes back to the queue
    # for another worker, rather than ending (worker/shutdown.py).
    handing_back: bool = False
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    # Waiting for its endpoint's slot or its key's rate limit: it needs no Celery thread
    # then (worker/thread_hold.py, whose ThreadHold is ``hold``).
    waiting: bool = False
    hold: Any = None
    # Set by Publisher.close once the row has ended: the next tick writes what is left and
    # the end entry with this status, then lets go of the run and sets ``ended``.
    end_status: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_seq: int = 0  # the number of its end entry, once given one

    # What each entry of the log held, so that the publisher can write the log again when
    # Redis lost it (restarted empty, or without its last second): four numbers an entry
    # (the pieces of text and of reasoning it ended at, the tokens so far, its time in ms;
    # a status line has STATUS_LINE for tokens, its text in ``status_lines``; the end has
    # END_ENTRY). 32 bytes an entry, far less than the text it numbers.
    marks: array[int] = field(default_factory=lambda: array("q"))
    status_lines: dict[int, str] = field(default_factory=dict)
    restore: bool = False  # the log may lack some of its entries: read it, write them again
    # The log's last entry before this run's first (a pane handed back by a worker that
    # stopped goes on in the same log): ``marks`` number this run's entries only.
    base_seq: int = -1
    # Set by Publisher.hand_back: the next tick writes its status line and lets go of it,
    # with no end entry (its next worker's entries follow in the same log). Its heartbeat
    # is left to expire: were it gone before its row is pending, a look by the watchdog
    # would take it for dead.
    leaving: bool = False
    # Set once this worker is done with it: ended, or handed back and queued again.
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.base_seq < 0:
            self.base_seq = self.seq

    def set_waiting(self, waiting: bool) -> None:
        self.waiting = waiting
        self.changed()

    def changed(self) -> None:
        """It started or stopped waiting, or ended: its turn's thread may go."""
        if self.hold is not None:
            self.hold.check()

    def elapsed_ms(self, now: float | None = None) -> int:
        """Milliseconds since the pane started (``now``: a time.monotonic() already read)."""
        return int(((time.monotonic() if now is None else now) - self.started) * 1000)

    @property
    def dirty(self) -> bool:
        """Whether the log lacks something the pane has: text, reasoning or a status line."""
        return (
            len(self.text) > self.logged_text
            or len(self.reasoning) > self.logged_reasoning
            or self.status_message is not None
        )

    def checkpoint(self) -> tuple[int, str, str] | None:
        """What the database lacks of what the log has (its text and reasoning so far, to
        write), or None when the last checkpoint holds it all."""
        logged = (self.logged_text, self.logged_reasoning)
        if logged == self.checkpointed:
            return None
        self.checkpointed = logged
        return (
            self.response_id,
            "".join(self.text[: self.logged_text]),
            "".join(self.reasoning[: self.logged_reasoning]),
        )

    def take_entry(self) -> tuple[int, dict[str, str | int]]:
        """The next log entry, numbered: what arrived since the last one, else the status
        line."""
        now = time.monotonic()
        self.seq += 1
        if len(self.text) > self.logged_text or len(self.reasoning) > self.logged_reasoning:
            start = self.logged_text, self.logged_reasoning
            self.logged_text, self.logged_reasoning = len(self.text), len(self.reasoning)
            self.marks.extend(
                (self.logged_text, self.logged_reasoning, self.tokens, self.elapsed_ms(now))
            )
            entry = self._delta(start, self.marks[-4:])
        else:
            message = self.status_message or ""
            self.marks.extend((self.logged_text, self.logged_reasoning, STATUS_LINE, 0))
            self.status_lines[self.seq] = message
            entry = {"k": "s", "msg": message}
        self.status_message = None
        self.flushed_at = now
        return self.seq, entry

    def take_end(self) -> int:
        """The number of the end entry, which follows every other."""
        self.seq += 1
        self.end_seq = self.seq
        self.marks.extend((self.logged_text, self.logged_reasoning, END_ENTRY, 0))
        return self.seq

    def entry(self, seq: int) -> dict[str, str | int]:
        """Log entry ``seq`` (1 …) as :meth:`take_entry` made it (the end entry is
        ``end_seq``, written by ``response_log.add_end``)."""
        at = (seq - 1 - self.base_seq) * 4
        mark = self.marks[at : at + 4]
        if mark[2] == STATUS_LINE:
            return {"k": "s", "msg": self.status_lines[seq]}
        start = (self.marks[at - 4], self.marks[at - 3]) if at > 0 else (0, 0)
        return self._delta(start, mark)

    def _delta(self, start: tuple[int, int], mark: array[int]) -> dict[str, str | int]:
        entry: dict[str, str | int] = {
            "k": "d",
            "t": "".join(self.text[start[0] : mark[0]]),
            "r": "".join(self.reasoning[start[1] : mark[1]]),
            "n": mark[2],
            "ms": mark[3],
        }
        if self.ttft_ms is not None:
            entry["ttft"] = self.ttft_ms
        if self.waited_ms:
            entry["w"] = self.waited_ms
        return entry


STATUS_LINE = -1
END_ENTRY = -2
