"""Per-process caches that every web process drops at once when one of them changes.

A cache here is a ``ShortCache`` with a version number in Redis: saving a row it caches
bumps the version (``changed``), and each Send reads every version in the Redis round trip
it makes anyway (``playground.quotas.count_send``) and drops a cache whose version moved
(``observe``). So a key saved, or a team picked, in one web process is seen by the next
Send in any other, with no query of its own on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playground.redis_sync import redis_client

#: name -> the Redis key holding its version.
VERSIONS = {name: f"pg:version:{name}" for name in ("credentials", "teams", "quotas", "rates")}
_forgets: dict[str, Callable[..., None]] = {}
_seen: dict[str, Any] = {}


def register(name: str, forget: Callable[..., None]) -> None:
    _forgets[name] = forget


def changed(name: str) -> None:
    """A row of cache ``name`` changed here: drop it here and in every other process."""
    _forgets[name]()
    redis_client().incr(VERSIONS[name])


def observe(values: list[Any]) -> None:
    """The versions read (in the order of VERSIONS): drop the caches that moved."""
    for name, value in zip(VERSIONS, values, strict=True):
        if name not in _seen or _seen[name] != value:
            _forgets[name]()  # the first time too: it may have been read before a change
        _seen[name] = value
