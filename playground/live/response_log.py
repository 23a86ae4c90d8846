"""The durable record of every pane while it streams: one Redis Stream per response.

Entry ids are ``0-<seq>``: the sequence number is the id, so "replay after seq N" is
``XREAD … 0-N``, an entry can never be written twice (Redis refuses an id that is not
larger), and a reader that follows the stream can never miss or reorder anything. The same
code serves replay and live (see playground.live.consumer).

Entry kinds (field ``k``):
- ``d``: a coalesced delta: ``t`` text, ``r`` reasoning, ``n`` tokens so far, ``ms``
  milliseconds since the pane started, ``ttft`` time to first token in ms (from the call),
  ``w`` ms the pane waited before its call (slot or rate limit; absent when it did not).
- ``s``: a status line for the pane (``msg``), e.g. waiting for a busy endpoint.
- ``e``: the end; ``st`` is the final status. The row in the database then holds the rest.

Each session also has a control stream whose entries announce new turns (``turn``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

PREFIX = "pg"


def log_key(response_id: int) -> str:
    return f"{PREFIX}:log:{response_id}"


def control_key(session_id: int) -> str:
    return f"{PREFIX}:ctl:{session_id}"


def stop_key(response_id: int) -> str:
    return f"{PREFIX}:stop:{response_id}"


def heartbeat_key(response_id: int) -> str:
    return f"{PREFIX}:hb:{response_id}"


def entry_id(seq: int) -> str:
    return f"0-{seq}"


def seq_of(entry: str | bytes) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.partition("-")[2] or 0)


def last_seq(reply: list[Any]) -> int:
    """The sequence number of a log's last entry, from ``XREVRANGE <log> + - COUNT 1``
    (0: the log is empty or gone)."""
    return seq_of(reply[0][0]) if reply else 0


def response_id_of(key: str | bytes) -> int:
    text = key.decode() if isinstance(key, bytes) else key
    return int(text.rsplit(":", 1)[1])


# How long a heartbeat lives; the worker refreshes it well before. A pane whose heartbeat
# is gone while it is marked streaming has lost its worker.
HEARTBEAT_TTL_S = 5
HEARTBEAT_EVERY_S = 1.5
STOP_TTL_S = 3600


def add_end(pipe: Any, response_id: int, seq: int, status: str) -> None:
    """Queue on ``pipe`` (a redis-py pipeline, blocking or asyncio) what closes a
    response's log: the end entry as entry ``seq``, the log's lifetime from now on
    (``PLAYGROUND_LOG_TTL``), and no more heartbeat."""
    key = log_key(response_id)
    pipe.xadd(key, {"k": "e", "st": status}, id=entry_id(seq))
    pipe.expire(key, settings.PLAYGROUND_LOG_TTL)
    pipe.delete(heartbeat_key(response_id))


def text(value: str | bytes | None) -> str:
    """A Redis reply as text."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def decoded(fields: Mapping[Any, Any]) -> dict[str, str]:
    """A stream entry's fields as text."""
    return {text(k): text(v) for k, v in fields.items()}


@dataclass
class Batch:
    """Several log entries of one pane merged into what a reader shows at once."""

    last_seq: int = 0
    text: str = ""
    reasoning: str = ""
    tokens: int | None = None
    elapsed_ms: int | None = None
    ttft_ms: int | None = None
    waited_ms: int = 0
    message: str | None = None
    ended: bool = False
    end_status: str = ""
    kinds: set[str] = field(default_factory=set)

    def add(self, entry_id_: str | bytes, fields: Mapping[Any, Any]) -> None:
        data = decoded(fields)
        self.last_seq = max(self.last_seq, seq_of(entry_id_))
        kind = data.get("k", "")
        self.kinds.add(kind)
        if kind == "d":
            self.text += data.get("t", "")
            self.reasoning += data.get("r", "")
            self.message = None
            for name, attr in (
                ("n", "tokens"),
                ("ms", "elapsed_ms"),
                ("ttft", "ttft_ms"),
                ("w", "waited_ms"),
            ):
                if data.get(name):
                    setattr(self, attr, int(data[name]))
        elif kind == "s":
            self.message = data.get("msg", "")
        elif kind == "e":
            self.ended = True
            self.end_status = data.get("st", "")


def merge(entries: Iterable[tuple[Any, Any]] | None) -> Batch:
    batch = Batch()
    for entry, fields in entries or ():
        batch.add(entry, fields)
    return batch
