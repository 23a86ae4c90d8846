"""Request bodies are bounded before anything reads them (playground/body_limit.py), so one
client cannot make the web process hold or spool an endless body: refused with 413 and a
sentence by its Content-Length before a byte is read, or as soon as the bytes streamed in
pass the limit, before the session, sign-in or CSRF token are looked at. Send, which takes
images, is allowed its images besides the form. Driven through the real ASGI application,
as daphne calls it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.conf import settings

from playground.asgi import application

CHUNK = 64 * 1024


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            *headers,
        ],
        "client": ("203.0.113.9", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def post(path: str, size: int, *, declare: bool = True) -> tuple[int, str, int]:
    """POST ``size`` bytes in 64 KiB chunks (with a Content-Length unless ``declare`` is
    False: a chunked body); the status, the body and how many bytes the app read."""
    read = 0
    left = size
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read, left
        if left <= 0:
            await asyncio.sleep(3600)  # the client has nothing more to send
        piece = min(CHUNK, left)
        left -= piece
        read += piece
        return {"type": "http.request", "body": b"a" * piece, "more_body": left > 0}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", str(size).encode())] if declare else []
    await asyncio.wait_for(application(scope(path, headers), receive, send), timeout=60)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body.decode(errors="replace"), read


async def test_a_body_declared_too_large_is_refused_before_a_byte_is_read() -> None:
    status, body, read = await post("/login/", 100 * 2**20)

    assert status == 413
    assert body == (
        "This request is larger than 4 MB, the most this server accepts here."
        " Send less: fewer or smaller files, a shorter prompt."
    )
    assert read == 0


async def test_a_streamed_body_is_cut_off_once_past_the_limit() -> None:
    """No Content-Length (chunked): refused as soon as the bytes read pass the limit, not
    after the client's 50 MB."""
    status, body, read = await post("/admin/login/", 50 * 2**20, declare=False)

    assert status == 413
    assert body.startswith("This request is larger than 4 MB")
    assert settings.PLAYGROUND_MAX_BODY_BYTES < read <= settings.PLAYGROUND_MAX_BODY_BYTES + CHUNK


async def test_a_body_that_understates_its_length_is_cut_off_too() -> None:
    status, _body, read = await post("/s/1/rename/", 20 * 2**20, declare=False)

    assert status == 413
    assert read <= settings.PLAYGROUND_MAX_BODY_BYTES + CHUNK


@pytest.mark.parametrize("path", ["/send/", "/s/12/send/"])
async def test_send_may_carry_its_images(path: str) -> None:
    """10 MB (two large images) reach Send (which then asks for the CSRF token: 403), where
    any other form would be refused; past the images' allowance, Send is refused too."""
    assert (await post("/s/12/rename/", 10 * 2**20))[0] == 413

    status, _body, read = await post(path, 10 * 2**20)
    assert status == 403 and read == 10 * 2**20

    status, body, read = await post(path, settings.PLAYGROUND_MAX_UPLOAD_BYTES + 1)
    assert (status, read) == (413, 0)
    assert body.startswith("This request is larger than 116 MB")


async def test_a_small_body_goes_through_as_before() -> None:
    status, _body, _read = await post("/login/", 100)

    assert status == 403  # Django's CSRF check answers: the body was handed on whole
