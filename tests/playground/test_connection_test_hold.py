"""Test connection against a server that accepts and never answers: every click ends with a
sentence within the worker's limit, and no click holds one of the web's threads, so forty
of them at once leave another visitor's sign-in page as quick as ever.

Driven through the ASGI application (``playground.asgi``: the web's one pool of request
threads, ``asgi_handler``) with real Redis; the worker's check (``run_check``) runs on this
test's event loop as the worker would run it, against a real socket that never answers.
The bounds asserted are generous on purpose (a sign-in page under 1 s where the old wait
held threads for 30 s; sentences within the 2 s limit plus 8 s): they tell a thread held
by a click from a slow machine, not one machine's speed from another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.test import Client
from django.urls import reverse

from playground.asgi import application
from tests.playground.helpers import make_endpoint

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

CLICKS = 40
LIMIT_S = 2
CSRF = "c" * 32  # a CSRF secret as the cookie and the header carry it


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts every connection, reads what it is sent, and never answers.
    Yields its base URL."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = server.accept()
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    done.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def fetch(path: str, cookie: str = "", method: str = "GET", body: bytes = b"") -> Any:
    headers = [(b"host", b"127.0.0.1"), (b"hx-request", b"true")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if method == "POST":
        headers += [
            (b"x-csrftoken", CSRF.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ]
    communicator = HttpCommunicator(application, method, path, body=body, headers=headers)
    return await communicator.get_response(timeout=30)


async def timed(path: str) -> float:
    started = time.monotonic()
    page = await fetch(path)
    assert page["status"] == 200
    return time.monotonic() - started


async def test_forty_clicks_on_a_silent_server_hold_no_web_thread_and_each_ends_with_a_sentence(
    owner: Any, silent_server: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.tasks import check_connection
    from playground.worker.connection_check import run_check

    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    settings.PLAYGROUND_TEST_CONNECTION_SECONDS = LIMIT_S
    loop = asyncio.get_running_loop()
    checks: list[asyncio.Task[None]] = []

    def enqueue(*args: Any) -> None:  # the worker, on this loop: the real check, not awaited
        loop.call_soon_threadsafe(lambda: checks.append(loop.create_task(run_check(*args))))

    monkeypatch.setattr(check_connection, "delay", enqueue)
    endpoint = await sync_to_async(make_endpoint)(
        owner, name="Silent", base_url=silent_server, key="sk-silent-0000", model_ids=["m"]
    )
    browser = Client()
    await sync_to_async(browser.force_login)(owner)
    cookie = f"sessionid={browser.cookies['sessionid'].value}; csrftoken={CSRF}"
    await timed("/login/")  # the sign-in page once, so its first render is not measured

    url = reverse("endpoint_test", args=[endpoint.pk])
    started = time.monotonic()
    clicks = [asyncio.ensure_future(fetch(url, cookie, "POST")) for _ in range(CLICKS)]
    await asyncio.sleep(0.05)  # the clicks are in the web's threads
    sign_in = await timed("/login/")
    answered = await asyncio.gather(*clicks)
    clicked_in = time.monotonic() - started

    assert [a["status"] for a in answered] == [200] * CLICKS
    assert sign_in < 1.0, f"the sign-in page took {sign_in:.2f} s during {CLICKS} clicks"
    assert clicked_in < LIMIT_S, f"{CLICKS} clicks took {clicked_in:.2f} s to be answered"
    polls = [re.findall(r'hx-get="([^"]+)"', a["body"].decode())[0] for a in answered]

    # The checks now wait for the silent server; the pages ask for their sentences.
    await asyncio.sleep(0.5)
    assert sum(not c.done() for c in checks) == CLICKS  # the upstream really is silent
    sign_in_while_waiting = await timed("/login/")
    assert sign_in_while_waiting < 1.0

    sentences: dict[str, str] = {}
    deadline = time.monotonic() + LIMIT_S + 8
    while len(sentences) < CLICKS and time.monotonic() < deadline:
        pending = [p for p in polls if p not in sentences]
        pages = await asyncio.gather(*(fetch(p, cookie) for p in pending))
        for poll, page in zip(pending, pages, strict=True):
            assert page["status"] == 200
            body = page["body"].decode()
            if "testing…" not in body:
                sentences[poll] = body
        await asyncio.sleep(0.25)
    took = time.monotonic() - started

    assert len(sentences) == CLICKS, f"{CLICKS - len(sentences)} clicks had no sentence"
    expected = (
        '<span class="test-result">Silent · m: failed — no answer within 2 s (the server '
        "accepted the request but sent nothing back, or could not be reached); check that "
        "it is up and not overloaded, then test again.</span>"
    )
    assert set(sentences.values()) == {expected}
    assert took < LIMIT_S + 8


# ---------------------------------------------------------------- when no answer can come


def test_a_test_no_worker_took_up_says_so_once_its_wait_is_over(
    owner: Any, owner_client: Client
) -> None:
    import json

    from playground import connection_tests
    from playground.redis_sync import redis_client

    token, _reply = connection_tests.begin(owner.pk, reverse("endpoints"))
    poll = reverse("connection_test", args=[token])
    assert "testing…" in owner_client.get(poll, HTTP_HX_REQUEST="true").content.decode()

    asked = connection_tests.ASKED.format(user=owner.pk, token=token)
    record = json.loads(redis_client().get(asked))
    record["at"] -= record["wait"] + 1  # as if asked that long ago
    redis_client().set(asked, json.dumps(record), ex=60)

    said = owner_client.get(poll, HTTP_HX_REQUEST="true").content.decode()
    assert said == (
        '<span class="test-result">No worker answered within 30 s — is a worker running?</span>'
    )


def test_with_redis_away_a_click_and_its_page_answer_with_a_sentence(
    owner: Any, owner_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing raises (no 500): the click says no worker could be asked, the page says its
    answer could not be read."""
    import redis

    from playground import connection_tests

    endpoint = make_endpoint(owner, name="Lab", model_ids=["m"])
    token, _reply = connection_tests.begin(owner.pk, reverse("endpoints"))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens here once it is closed
    away = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    monkeypatch.setattr(connection_tests, "redis_client", lambda: away)

    clicked = owner_client.post(
        reverse("endpoint_test", args=[endpoint.pk]), HTTP_HX_REQUEST="true"
    )
    assert clicked.status_code == 200
    assert connection_tests.NOT_ASKED in html.unescape(clicked.content.decode())

    page = owner_client.get(reverse("connection_test", args=[token]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert connection_tests.REDIS_DOWN in html.unescape(page.content.decode())
