"""The web process's HTTP handler: Django's middleware and views, one hop to a kept thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from django.urls import reverse

from playground.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def fetch(path: str, method: str = "GET", headers: Any = (), body: bytes = b"") -> Any:
    headers = [(b"host", b"127.0.0.1"), *headers]
    communicator = HttpCommunicator(application, method, path, body=body, headers=headers)
    return await communicator.get_response(timeout=10)


async def test_pages_go_through_the_whole_middleware_chain() -> None:
    page = await fetch("/login/")
    assert page["status"] == 200
    assert b'name="csrfmiddlewaretoken"' in page["body"]
    headers = dict(page["headers"])
    assert headers[b"X-Frame-Options"] == b"DENY"  # XFrameOptionsMiddleware
    assert b"csrftoken=" in headers[b"Set-Cookie"]  # CsrfViewMiddleware

    refused = await fetch(reverse("send_new"), "POST", body=b"prompt=hi")
    assert refused["status"] == 403  # no CSRF token: refused before the view

    signed_out = await fetch("/")
    assert signed_out["status"] == 302  # sign-in required
    assert dict(signed_out["headers"])[b"Location"].startswith(b"/login/")


async def test_requests_run_on_kept_threads_not_one_new_thread_each() -> None:
    handler = application.application_mapping["http"].app.application  # body limit, static files
    seen: list[str] = []
    respond = handler._respond

    def spy(request: Any) -> Any:
        seen.append(threading.current_thread().name)
        return respond(request)

    handler._respond = spy
    try:
        for _ in range(10):
            assert (await fetch("/login/"))["status"] == 200
    finally:
        del handler._respond
    assert len(seen) == 10
    assert all(name.startswith("http") for name in seen)
    # One after the other: kept threads serve them. (The pool may start a second thread
    # when a request arrives before the last one's thread has counted itself idle.)
    assert len(set(seen)) <= 2
