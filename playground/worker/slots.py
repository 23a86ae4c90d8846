"""Per-endpoint concurrency limits, shared by every worker through Redis.

llama.cpp's server decodes one request at a time, and a team may want to cap any endpoint.
A pane takes a slot before it calls the endpoint and gives it back after. Panes that wait
are served in the order they asked, and are told how many are ahead of them. A slot or a
place in the queue whose pane's heartbeat has gone (its worker died) is dropped, so a crash
never blocks an endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import NoScriptError, RedisError

from playground.live import response_log

log = logging.getLogger(__name__)

# KEYS: holders zset, queue zset, owners hash (response id -> person). ARGV: response id,
# limit, now, heartbeat key prefix, person, the most slots one person may hold.
# Returns -1 when the slot is taken, else how many are ahead.
#
# The queue is served in order, except that a pane whose person already holds their share
# of the endpoint lets the others pass (its place is kept): one person's many panes can
# never take every slot, so someone else's pane starts as soon as a slot is free.
_ACQUIRE = """
local holders, queue, owners = KEYS[1], KEYS[2], KEYS[3]
local me, limit, now, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local person, share = ARGV[5], tonumber(ARGV[6])
for _, key in ipairs({holders, queue}) do
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if member ~= me and redis.call('EXISTS', prefix .. member) == 0 then
      redis.call('ZREM', key, member)
      redis.call('HDEL', owners, member)
    end
  end
end
if redis.call('ZSCORE', holders, me) then return -1 end
if not redis.call('ZSCORE', queue, me) then
  redis.call('ZADD', queue, now, me)
  redis.call('HSET', owners, me, person)
end
local held = redis.call('ZCARD', holders)
local taken = {}
for _, member in ipairs(redis.call('ZRANGE', holders, 0, -1)) do
  local who = redis.call('HGET', owners, member) or ''
  taken[who] = (taken[who] or 0) + 1
end
local free, ahead = limit - held, 0
for _, member in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  local who = redis.call('HGET', owners, member) or ''
  local room = (taken[who] or 0) < share
  if member == me then
    if room and ahead < free then
      redis.call('ZREM', queue, me)
      redis.call('ZADD', holders, now, me)
      return -1
    end
    return math.max(1, ahead - free + 1)
  end
  if room then
    ahead = ahead + 1
    taken[who] = (taken[who] or 0) + 1
  end
end
return 1
"""


MAX_POLL_S = 1.0

_ACQUIRE_SHA = hashlib.sha1(_ACQUIRE.encode()).hexdigest()  # noqa: S324 - how Redis names it


def _keys(endpoint: str) -> list[str]:
    prefix = response_log.PREFIX
    return [
        f"{prefix}:slots:{endpoint}",
        f"{prefix}:queue:{endpoint}",
        f"{prefix}:slotowners:{endpoint}",
    ]


def person_share(limit: int) -> int:
    """The most of an endpoint's ``limit`` slots one person's panes may hold at once."""
    return max(1, math.ceil(limit * settings.PLAYGROUND_FAIR_ENDPOINT_SHARE))


def _args(response_id: int, limit: int, person: int) -> list[Any]:
    prefix = f"{response_log.PREFIX}:hb:"
    return [response_id, limit, time.time(), prefix, person, person_share(limit)]


def beat_and_try(
    client: redis.Redis, beats: list[int], wanted: list[tuple[str, int, int]], person: int = 0
) -> dict[int, bool]:
    """In one round trip: a heartbeat for each response id of ``beats``, and a try for a
    slot per (endpoint, limit, response id) of ``wanted``, for ``person``'s panes. Returns,
    per response id tried, whether it holds the slot now (if not, it keeps its place in the
    endpoint's queue). The worker does this while it claims a turn: one round trip where beating and
    trying apart take two, and a script registered on a pipeline takes one more (to ask
    Redis whether the script is loaded)."""
    for _attempt in range(2):
        with client.pipeline(transaction=False) as pipe:
            for response_id in beats:
                pipe.set(
                    response_log.heartbeat_key(response_id), 1, ex=response_log.HEARTBEAT_TTL_S
                )
            for endpoint, limit, response_id in wanted:
                pipe.evalsha(_ACQUIRE_SHA, 3, *_keys(endpoint), *_args(response_id, limit, person))
            results = pipe.execute(raise_on_error=False)
        if not any(isinstance(r, NoScriptError) for r in results):
            break
        client.script_load(_ACQUIRE)  # a new or flushed Redis: load it, then once more
    for result in results:
        if isinstance(result, Exception):
            raise result
    tried = results[len(beats) :]
    return {pk: int(ahead) < 0 for (_e, _l, pk), ahead in zip(wanted, tried, strict=True)}


def release_sync(client: redis.Redis, endpoint: str, response_id: int) -> None:
    """Give back a slot (or a place in the queue) taken by beat_and_try that will not be used."""
    holders, queue, owners = _keys(endpoint)
    with client.pipeline(transaction=False) as pipe:
        pipe.zrem(holders, response_id)
        pipe.zrem(queue, response_id)
        pipe.hdel(owners, response_id)
        pipe.execute()


@asynccontextmanager
async def endpoint_slot(
    redis: aioredis.Redis,
    endpoint: str,
    limit: int,
    response_id: int,
    on_wait: Callable[[int], Awaitable[None]],
    poll: float = 0.05,
    held: bool = False,
    person: int = 0,
) -> AsyncIterator[None]:
    """Hold one of ``limit`` slots of ``endpoint`` for the body of the ``async with``
    (``held``: beat_and_try already took it; it is given back all the same), for a pane of
    ``person``'s.

    ``on_wait(ahead)`` is awaited whenever the number of requests ahead changes. A pane
    asks again every ``poll`` seconds, less often the more are ahead of it (at most once a
    second): a long queue costs Redis a few calls a second, not twenty per pane.
    """
    keys = _keys(endpoint)
    script = redis.register_script(_ACQUIRE)
    last_ahead = -1
    try:
        while not held:
            ahead = int(
                await script(
                    keys=keys,
                    args=_args(response_id, limit, person),
                )
            )
            if ahead < 0:
                break
            if ahead != last_ahead:
                last_ahead = ahead
                await on_wait(ahead)
            await asyncio.sleep(min(poll * ahead, MAX_POLL_S))
        yield
    finally:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.zrem(keys[0], response_id)
                pipe.zrem(keys[1], response_id)
                pipe.hdel(keys[2], response_id)
                await pipe.execute()
        except (RedisError, OSError) as error:
            # Redis away as the answer ends: the answer is not failed for it. The slot is
            # dropped by the next pane that asks, once this one's heartbeat is gone.
            log.warning("slot of response %s not given back: %s", response_id, error)
