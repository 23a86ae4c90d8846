"""Shared fixtures: the three personas, a clean Redis for every test, the worker context.

`make test` starts a real redis-server (and PostgreSQL) on free loopback ports and passes
their URLs in REDIS_URL and DATABASE_URL; nothing here fakes them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery staple"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running in the test
    thread for as long as its browser is open, and pytest-asyncio cannot start one then."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))


@pytest.fixture
def clean_redis() -> Any:
    """The real Redis of the run, with the playground's keys removed. Used autouse by the
    Django-side test folders. (Not FLUSHDB: that would also drop Celery's queue bindings,
    and running workers would then never see a task.)"""
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter("pg:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pytest.fail(
            f"Redis is not reachable at {settings.REDIS_URL}: run the suite with `make test`, "
            "which starts redis-server and PostgreSQL for it."
        )
    yield client
    client.close()


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def outsider(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("mallory", "mallory@example.com", PASSWORD)


@pytest.fixture
def owner_client(client: Any, owner: Any) -> Any:
    client.force_login(owner)
    return client


@pytest.fixture
def outsider_client(client: Any, outsider: Any) -> Any:
    client.force_login(outsider)
    return client


@pytest.fixture(autouse=True)
def _seeded_catalog(request: pytest.FixtureRequest) -> None:
    """The catalog rows the seed migration writes. Transactional tests (the browser tests)
    flush every table afterwards, data migrations' rows included; put them back, and drop
    each process's cached copy."""
    names = request.fixturenames
    wanted = next((f for f in ("transactional_db", "db") if f in names), None)
    marker = request.node.get_closest_marker("django_db")
    if wanted is None and marker is None:
        return
    request.getfixturevalue(wanted or "db")
    import importlib

    from django.apps import apps

    from playground.catalog import forget_catalog, forget_limits
    from playground.models import CatalogEntry, ExchangeRate
    from playground.quotas import forget_quotas, forget_rates

    if not CatalogEntry.objects.exists():
        for seeding in ("0003_seed_catalog", "0013_video_audio", "0014_echo_takes_media"):
            importlib.import_module(f"playground.migrations.{seeding}").seed(apps, None)
    if not ExchangeRate.objects.exists():
        importlib.import_module("playground.migrations.0010_seed_exchange_rates").seed(apps, None)
    forget_catalog()
    forget_limits()  # rate limits a test set are gone with its rows
    forget_quotas()  # and so are its quotas and rates
    forget_rates()
