"""Client-side rate limits per credential: requests and tokens per minute, shared by every
worker through Redis.

Each credential of a provider has a sliding one-minute window (a sorted set of the calls
made, scored by time, each member carrying its token count). A call that would pass a
limit waits until enough of the window has slid by, and its pane says so. The credential
is named by a hash of its key, never by the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from playground.catalog import Limits
from playground.live import response_log
from providers.base import Credentials

WINDOW_MS = 60_000

# KEYS: window zset. ARGV: now ms, rpm (0 = none), tpm (0 = none), tokens, member.
# Returns 0 when the call was admitted (and recorded), else the milliseconds to wait.
_ADMIT = """
local key, now = KEYS[1], tonumber(ARGV[1])
local rpm, tpm, tokens, member = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60000)
local calls = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local count, used = #calls / 2, 0
for i = 1, #calls, 2 do
  used = used + tonumber(string.match(calls[i], ':(%d+)$') or '0')
end
local wait = 0
if rpm > 0 and count + 1 > rpm then
  -- the oldest call that must leave the window before this one fits
  wait = tonumber(calls[(count - rpm + 1) * 2]) + 60000 - now
end
if tpm > 0 and used + tokens > tpm and count > 0 then
  local freed, i = used, 1
  while freed + tokens > tpm and i <= #calls do
    freed = freed - tonumber(string.match(calls[i], ':(%d+)$') or '0')
    wait = math.max(wait, tonumber(calls[i + 1]) + 60000 - now)
    i = i + 2
  end
end
if wait > 0 then return math.max(wait, 1) end
redis.call('ZADD', key, now, member .. ':' .. tokens)
redis.call('PEXPIRE', key, 61000)
return 0
"""


def credential_id(provider: str, credentials: Credentials, base_url: str) -> str:
    """A stable name for one credential at one endpoint; a hash, never the key itself."""
    parts = [provider, base_url, credentials.api_key]
    parts += [f"{name}={value}" for name, value in sorted(credentials.extra.items())]
    material = "\x00".join(parts)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


async def admit(
    redis: aioredis.Redis,
    credential: str,
    limits: Limits,
    tokens: int,
    on_wait: Callable[[float], Awaitable[None]],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Wait until a call of ``tokens`` fits the credential's limits, record it, and return
    its member id (for :func:`settle`). ``on_wait(seconds)`` is told each wait."""
    member = uuid.uuid4().hex[:12]
    if not limits:
        return member
    key = f"{response_log.PREFIX}:rl:{credential}"
    script = redis.register_script(_ADMIT)
    rpm = limits.requests_per_minute or 0
    tpm = limits.tokens_per_minute or 0
    tokens = min(tokens, tpm) if tpm else tokens  # one call larger than the limit still runs
    while True:
        now_ms = int(clock() * 1000)
        wait_ms = int(await script(keys=[key], args=[now_ms, rpm, tpm, tokens, member]))
        if wait_ms <= 0:
            return member
        await on_wait(wait_ms / 1000)
        await sleep(min(wait_ms / 1000, 5.0))


async def settle(
    redis: aioredis.Redis, credential: str, member: str, estimated: int, actual: int
) -> None:
    """Replace a call's estimated tokens with what it really used."""
    key = f"{response_log.PREFIX}:rl:{credential}"
    score = await redis.zscore(key, f"{member}:{estimated}")
    if score is None:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(key, f"{member}:{estimated}")
        pipe.zadd(key, {f"{member}:{actual}": score})
        await pipe.execute()
