"""Share tokens cannot be enumerated: tokens that open nothing are counted per client address
and per signed-in person in Redis, and past the limit every try is refused with a 429 and a
sentence, nothing looked up, even when the tries come all at once (share-link enumeration,
LibreChat #10381 class)."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from playground import share_links
from playground.models import Audience, Session
from tests.playground.share_helpers import finished_comparison, link_to, shared_url

pytestmark = pytest.mark.django_db

NOW = 1_800_000_030.0  # the middle of a minute: no test straddles two windows


@pytest.fixture(autouse=True)
def _one_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    class Clock:
        @staticmethod
        def time() -> float:
            return NOW

    monkeypatch.setattr(share_links, "time", Clock)


@pytest.fixture
def session(owner: Any) -> Session:
    return finished_comparison(owner)


def bad_token() -> str:
    return secrets.token_urlsafe(32)


def get(token: str, ip: str = "203.0.113.7", user: Any = None) -> Any:
    client = Client(REMOTE_ADDR=ip)
    if user is not None:
        client.force_login(user)
    return client.get(shared_url(token))


def test_parallel_guesses_from_one_address_get_no_more_than_the_limit(
    settings: Any, session: Session, clean_redis: Any
) -> None:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 10
    _link, token = link_to(session, Audience.ANYONE)
    statuses: list[int] = []
    start = threading.Barrier(40)

    def guess() -> None:
        try:
            start.wait(timeout=10)
            statuses.append(get(bad_token()).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert Counter(statuses) == {404: 10, 429: 30}
    # Blocked for the rest of the minute, good token or not: nothing is looked up.
    refused = get(token)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert "Too many share links were tried from here in the last minute" in (
        refused.content.decode()
    )
    assert "Paris" not in refused.content.decode()
    # Another address is not.
    assert get(token, ip="198.51.100.4").status_code == 200


def test_tokens_that_open_are_not_counted(
    settings: Any, session: Session, clean_redis: Any
) -> None:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 3
    _link, token = link_to(session, Audience.ANYONE)

    assert [get(token).status_code for _ in range(10)] == [200] * 10
    assert list(clean_redis.scan_iter("pg:share:*")) == []
    assert [get(bad_token()).status_code for _ in range(4)] == [404, 404, 404, 429]


def test_a_signed_in_person_is_limited_whatever_their_address(
    settings: Any, session: Session, outsider: Any
) -> None:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 1000
    settings.PLAYGROUND_SHARE_TRIES_PER_USER = 5

    tries = [get(bad_token(), ip=f"192.0.2.{n}", user=outsider).status_code for n in range(6)]

    assert tries == [404] * 5 + [429]
    # Someone else at those addresses is not held back by it.
    assert get(bad_token(), ip="192.0.2.5").status_code == 404


def test_forking_by_token_is_counted_too(settings: Any, session: Session, outsider: Any) -> None:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 2
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(outsider)

    answers = [client.post(f"/shared/{bad_token()}/fork/").status_code for _ in range(3)]

    assert answers == [404, 404, 429]
    assert Session.objects.filter(owner=outsider).count() == 0


def test_no_limit_when_set_to_zero(settings: Any, session: Session) -> None:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 0
    settings.PLAYGROUND_SHARE_TRIES_PER_USER = 0

    assert {get(bad_token()).status_code for _ in range(30)} == {404}
