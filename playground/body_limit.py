"""Request bodies bounded before anything reads them: an ASGI wrapper around the web app.

A body longer than the path allows is refused with 413 and a sentence before Django reads a
byte of it, before the session cookie, sign-in or CSRF token are looked at: at once when
its Content-Length says so, else as soon as the bytes streamed in (chunked, or a length
that lied) pass the limit. Send (``/send/``, ``/s/<id>/send/``), the only form that takes
files, is allowed PLAYGROUND_MAX_UPLOAD_BYTES (its images besides the form); every other
request PLAYGROUND_MAX_BODY_BYTES (settings). Django's own DATA_UPLOAD_* settings then
bound what it parses of the form.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

_UPLOADS = re.compile(r"^/(?:s/\d+/)?send/$")


class BodyTooLarge(Exception):
    pass


def limit_for(path: str) -> int:
    if _UPLOADS.match(path):
        return int(settings.PLAYGROUND_MAX_UPLOAD_BYTES)
    return int(settings.PLAYGROUND_MAX_BODY_BYTES)


def sentence(limit: int) -> str:
    return (
        f"This request is larger than {limit / 2**20:.0f} MB, the most this server accepts"
        " here. Send less: fewer or smaller files, a shorter prompt."
    )


class BodyLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        most = limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > most:
            await _refuse(send, most)
            return
        received = 0

        async def counted() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > most:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            # Django reads the whole body before anything else (ASGIHandler.read_body), so
            # no response has started: this is the one sent.
            await _refuse(send, most)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Any, most: int) -> None:
    body = sentence(most).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
