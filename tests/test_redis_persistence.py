"""`make run`'s Redis keeps what it holds across a crash (scripts/services.start_redis with
``persist``, as scripts/run.py starts it): the queue and the logs of streaming answers.
The tests' Redis keeps nothing. A real redis-server; no database."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from scripts.services import start_redis


def test_a_persisted_redis_killed_mid_write_keeps_all_but_the_last_second(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", persist=True)
    port = server.port
    try:
        client = redis.Redis.from_url(server.url)
        for seq in range(1, 51):
            client.xadd("pg:log:7", {"k": "d", "t": f"word{seq} "}, id=f"0-{seq}")
        client.rpush("celery", "a queued turn")
        time.sleep(1.5)  # appendfsync everysec: written within a second
        client.close()
        server.kill()  # as a crash ends it: no chance to save on the way out
    finally:
        server.stop()
    again = start_redis(tmp_path / "redis", port=port, persist=True)
    try:
        client = redis.Redis.from_url(again.url)
        entries = client.xrange("pg:log:7")
        assert len(entries) == 50
        assert entries[-1][1] == {b"k": b"d", b"t": b"word50 "}
        assert client.lrange("celery", 0, -1) == [b"a queued turn"]
        client.close()
    finally:
        again.stop()


def test_the_tests_redis_keeps_nothing(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    port = server.port
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        time.sleep(1.2)
        client.close()
    finally:
        server.stop()
    again = start_redis(tmp_path / "redis", port=port)
    try:
        assert redis.Redis.from_url(again.url).get("k") is None
    finally:
        again.stop()
