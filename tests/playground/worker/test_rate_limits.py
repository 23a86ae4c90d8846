"""Client-side rate limits per credential, on the real Redis: calls beyond the limit wait
until the one-minute window has slid far enough, and say for how long."""

from __future__ import annotations

from typing import Any

import pytest

from playground.catalog import Limits
from playground.worker.rate_limits import admit, credential_id, settle
from providers.base import Credentials


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def run(
    aredis: Any, clock: Clock, limits: Limits, tokens: int, key: str = "k"
) -> list[float]:
    waits: list[float] = []

    async def on_wait(seconds: float) -> None:
        waits.append(round(seconds, 1))

    await admit(aredis, key, limits, tokens, on_wait, clock=clock, sleep=clock.sleep)
    return waits


async def test_requests_beyond_the_limit_wait_for_the_window(aredis: Any) -> None:
    clock = Clock()
    limits = Limits(requests_per_minute=2)
    assert await run(aredis, clock, limits, 10) == []
    clock.now += 10
    assert await run(aredis, clock, limits, 10) == []
    clock.now += 5
    # The third call of the minute waits until the first leaves the window (45 s later).
    assert await run(aredis, clock, limits, 10) == [45.0, 40.0, 35.0, 30.0, 25.0, 20.0, 15.0,
                                                   10.0, 5.0]  # fmt: skip
    assert clock.now == 1_000_060.0
    # Another credential is not held up.
    assert await run(aredis, clock, limits, 10, key="other") == []


async def test_tokens_beyond_the_limit_wait_and_actual_usage_is_settled(aredis: Any) -> None:
    clock = Clock()
    limits = Limits(tokens_per_minute=1000)
    waits: list[float] = []

    async def on_wait(seconds: float) -> None:
        waits.append(seconds)

    member = await admit(aredis, "t", limits, 900, on_wait, clock=clock, sleep=clock.sleep)
    # The call really used 100 tokens: the next 800 fit at once.
    await settle(aredis, "t", member, 900, 100)
    assert await run(aredis, clock, limits, 800, key="t") == []
    clock.now += 30
    assert (await run(aredis, clock, limits, 500, key="t"))[0] == 30.0
    # One call larger than the whole limit still runs (alone), rather than never.
    clock.now += 120
    assert await run(aredis, clock, limits, 5000, key="t") == []


async def test_no_limits_means_no_wait(aredis: Any) -> None:
    clock = Clock()
    for _ in range(5):
        assert await run(aredis, clock, Limits(), 10**6) == []
    assert not await aredis.keys("pg:rl:*")


def test_a_credential_is_named_by_a_hash_never_by_its_key() -> None:
    key = "sk-live-abcdef0123456789"
    one = credential_id("openai", Credentials(api_key=key), "https://api.openai.com/v1")
    assert key not in one and len(one) == 32
    assert one != credential_id(
        "openai", Credentials(api_key=key + "x"), "https://api.openai.com/v1"
    )
    assert one != credential_id("openai", Credentials(api_key=key), "https://gateway.example/v1")
    assert Limits(1, 2000).describe() == "1 request and 2,000 tokens a minute"


pytestmark = pytest.mark.usefixtures("clean_redis")
