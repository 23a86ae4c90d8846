"""Test connection as the web process sees it: a worker is asked, and no request waits for it.

The click enqueues the check (``tasks.ask_connection_check`` / ``ask_credential_check``) and
is answered at once with a fragment that asks again a second later; each of those asks is a
non-blocking read of Redis. So a server that accepts and never answers holds a worker's
coroutine for at most ``PLAYGROUND_TEST_CONNECTION_SECONDS``, and none of the web's
threads (``asgi_handler``: every view of a process shares one pool; forty clicks that each
waited in it kept another visitor's sign-in page waiting for seconds).

A test is known by a random token, and its Redis keys name the person who asked: another
person (or someone signed out) who guesses or steals a token finds nothing (404).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import redis
from django.conf import settings

from playground.redis_sync import redis_client

# The worker's sentence for one test (a list it pushes to), and the record of the asking.
REPLY = "pg:conn:{user}:{token}"
K = TypeVar("K")
ASKED = "pg:conn:{user}:{token}:asked"
# The last test of each catalog entry, for the catalog's list in admin.
LAST_CATALOG_TEST = "pg:conn:catalog:{key}"
LAST_TEST_TTL_S = 7 * 24 * 3600
# How much longer than the worker's own limit the page waits: the time a busy worker may
# take to start the check.
QUEUE_MARGIN_S = 10
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

REDIS_DOWN = (
    "The test's answer could not be read (the site's Redis did not answer); try again in a moment."
)
NOT_ASKED = (
    "No worker could be asked to test it (the site's queue did not answer); try again in a moment."
)


def wait_seconds() -> int:
    """How long the page waits for a worker's sentence before saying none came."""
    return int(settings.PLAYGROUND_TEST_CONNECTION_SECONDS) + QUEUE_MARGIN_S


def no_worker(seconds: float) -> str:
    return f"No worker answered within {seconds:.0f} s — is a worker running?"


@dataclass(frozen=True)
class Asked:
    """A test just asked for: its token, or (token "") the sentence saying why not."""

    token: str
    sentence: str = ""


@dataclass(frozen=True)
class Answer:
    """What a test's page shows now: the sentence, or "" while the worker is on it."""

    sentence: str
    back: str = ""

    @property
    def waiting(self) -> bool:
        return not self.sentence


def begin(user_id: int, back: str) -> tuple[str, str]:
    """Record a new test of ``user_id``'s: its token and the key the worker answers to.
    ``back``: the page the test was started from. Raises :class:`redis.RedisError`."""
    token = secrets.token_urlsafe(18)
    wait = wait_seconds()
    record = json.dumps({"at": time.time(), "wait": wait, "back": back})
    redis_client().set(ASKED.format(user=user_id, token=token), record, ex=wait + 60)
    return token, REPLY.format(user=user_id, token=token)


def answer(user_id: int, token: str) -> Answer | None:
    """The state of test ``token`` for ``user_id``; None when that person asked for no
    such test (or it is long over). One round trip; never blocks, never raises."""
    if not token or len(token) > 64 or not set(token) <= TOKEN_CHARS:
        return None
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            pipe.get(ASKED.format(user=user_id, token=token))
            pipe.lindex(REPLY.format(user=user_id, token=token), 0)
            asked, reply = pipe.execute()
    except redis.RedisError:
        return Answer(REDIS_DOWN)
    if asked is None:
        return None
    record = json.loads(asked)
    back = str(record.get("back", ""))
    if reply is not None:
        return Answer(reply.decode() if isinstance(reply, bytes) else str(reply), back)
    wait = float(record.get("wait", wait_seconds()))
    if time.time() - float(record.get("at", 0)) > wait:
        return Answer(no_worker(wait), back)
    return Answer("", back)


def sentences_within(user_id: int, asked: Mapping[K, Asked], seconds: float) -> dict[K, str]:
    """The sentence of each test ``user_id`` asked for, by the caller's key, that came
    within ``seconds`` in all ("" for one still testing): a short, bounded wait for admin
    actions, which are synchronous. A Redis error ends the wait with what came."""
    replies = {REPLY.format(user=user_id, token=a.token): k for k, a in asked.items() if a.token}
    pending = list(replies)
    got: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    client = redis_client()
    while pending:
        left = deadline - time.monotonic()
        if left <= 0.01:
            break
        try:
            popped = client.blpop(pending, timeout=left)
        except redis.RedisError:
            break
        if popped is None:
            break
        key, value = (x.decode() if isinstance(x, bytes) else str(x) for x in popped)
        got[key] = value
        pending.remove(key)
    by_key = {replies[reply]: sentence for reply, sentence in got.items()}
    return {k: a.sentence or by_key.get(k, "") for k, a in asked.items()}


def last_catalog_tests(keys: Iterable[str]) -> dict[str, tuple[float, str]]:
    """The last Test connection of each catalog entry in ``keys``: (when, sentence)."""
    wanted = list(keys)
    if not wanted:
        return {}
    try:
        found = redis_client().mget([LAST_CATALOG_TEST.format(key=k) for k in wanted])
    except redis.RedisError:
        return {}
    tests = {}
    for key, raw in zip(wanted, found, strict=True):
        if raw is not None:
            record = json.loads(raw)
            tests[key] = (float(record["at"]), str(record["sentence"]))
    return tests
