"""The web process's synchronous Redis client (views: stop flags, control stream, reads)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, max_connections=200)
