"""The worker's own round of the watchdog: panes nobody watches are ended too.

The watchdog (playground.live.watchdog) runs when someone looks at a pane: a page load, a
live page's follower. A pane whose worker died while nobody watched would otherwise keep
its quota reservation, and its turn would count as answering, until someone opened its
page. So every worker runs this sweep on its event loop, every PLAYGROUND_SWEEP_SECONDS
(and once as it starts, a worker started again after a crash cleaning up after it), and a
lock in Redis lets one worker sweep at a time: the first to take it in an interval. A
sweep finds the streaming panes without a heartbeat, notes them, and about two seconds
later ends those still without one "interrupted", with the longer of their log's text and
their checkpoint, settled once (the watchdog's two looks; its ends are conditional, so a
page's look at the same moment changes nothing). A pane is so ended at most about
HEARTBEAT_TTL_S + PLAYGROUND_SWEEP_SECONDS + CONFIRM_S after its worker died.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings

from playground.live import response_log, watchdog
from playground.worker import event_loop

log = logging.getLogger(__name__)

LOCK = f"{response_log.PREFIX}:sweep"


def start() -> None:
    """Sweep on this process's worker loop from now on (the worker's ready signal)."""
    if settings.PLAYGROUND_SWEEP_SECONDS:
        asyncio.run_coroutine_threadsafe(sweep_forever(), event_loop.get_loop())


async def sweep_forever() -> None:
    every = settings.PLAYGROUND_SWEEP_SECONDS
    redis = event_loop.context().redis
    while True:
        try:
            ended = await sweep(redis, every)
        except Exception as error:  # Redis or the database away: the next round tries again
            log.warning("the sweep failed: %s", type(error).__name__)
        else:
            if ended:
                log.warning("sweep: ended %s panes whose worker stopped", len(ended))
        await asyncio.sleep(every)


async def sweep(redis: aioredis.Redis, every: float) -> list[int]:
    """One round, if no other worker has swept in the last ``every`` seconds; returns the
    responses it ended."""
    if not await redis.set(LOCK, 1, nx=True, ex=max(1, round(every))):
        return []
    suspects = await sync_to_async(watchdog.without_heartbeat_sync, thread_sensitive=False)()
    if not suspects:
        return []
    # The first look notes them (and ends any a page noted a while ago); the second, once
    # a worker that is well would have beaten again, ends the rest.
    ended = await watchdog.reap_dead(suspects)
    await asyncio.sleep(watchdog.CONFIRM_S + 0.1)
    return ended + await watchdog.reap_dead([pk for pk in suspects if pk not in ended])
