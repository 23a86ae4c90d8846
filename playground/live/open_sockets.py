"""How many live sockets one person has open, counted across every web process in Redis.

Each socket that follows a session (the owner's page, a share link's page) holds a Redis
connection of its web process while it waits for news, from one pool per process. Without a
cap, one account opening sockets in a loop would take the pool from everyone. A person (a
signed-in account; someone not signed in, by client address) may have
``PLAYGROUND_SOCKETS_PER_PERSON`` open; one more is closed with ``TOO_MANY`` at once.

A socket's entry is a member of the person's sorted set scored by when it was last seen;
the follower refreshes it every ``REFRESH_S``, so the entries of a web process that died
without saying goodbye are dropped after ``STALE_S``.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from playground.live import response_log

TOO_MANY = 4409  # the close code of a socket over the cap (the page says what to do)
REFRESH_S = 20.0
STALE_S = 60.0

# KEYS: the person's set. ARGV: socket id, now, stale before, cap. 1: taken, 0: refused.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
return 1
"""


def person_of(scope: dict[str, Any]) -> str:
    """Whose socket this is: the signed-in account, else the client's address."""
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    client = scope.get("client") or ("", 0)
    return f"ip:{client[0]}"


def _key(person: str) -> str:
    return f"{response_log.PREFIX}:sockets:{person}"


async def take(redis: aioredis.Redis, person: str, socket_id: str, cap: int) -> bool:
    """Count a new socket of ``person``'s; False (and nothing counted) when they already
    have ``cap`` open. A cap of 0 counts nothing and refuses nothing."""
    if not cap:
        return True
    now = time.time()
    taken = await redis.eval(_TAKE, 1, _key(person), socket_id, now, now - STALE_S, cap, STALE_S)
    return bool(int(taken))


async def refresh(redis: aioredis.Redis, person: str, socket_id: str) -> None:
    await redis.zadd(_key(person), {socket_id: time.time()}, xx=True)


async def give_back(redis: aioredis.Redis, person: str, socket_id: str) -> None:
    await redis.zrem(_key(person), socket_id)
