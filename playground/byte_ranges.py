"""A kept file served whole or by one byte range (RFC 9110 §14): browsers' video and audio
players ask for ranges to seek, and Safari plays nothing from a server that ignores them.
One range only; a request for several, or one that cannot be read, gets the whole file."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class PastTheEnd(Exception):
    """The range asked lies past the file's end (416)."""


def wanted_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte ``header`` asks of a file of ``size`` bytes; None to send
    it whole (no header, several ranges, a header we do not read); PastTheEnd when the
    range lies past the end."""
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if len(first) > 18 or len(last) > 18:
        return None  # no file here is that large; not a number worth reading
    if not first:
        if not last:
            return None
        suffix = int(last)  # the last N bytes
        if not suffix or not size:
            raise PastTheEnd
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # not a valid range: ignored, as the RFC says
    if start >= size:
        raise PastTheEnd
    return start, end


def _read(opened: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with opened:
        opened.seek(start)
        while length > 0:
            piece = opened.read(min(CHUNK, length))
            if not piece:
                return
            length -= len(piece)
            yield piece


def file_response(request: HttpRequest, opened: BinaryIO, content_type: str) -> HttpResponseBase:
    """``opened`` whole (200) or the one range the request asks (206), or 416."""
    size = os.fstat(opened.fileno()).st_size
    try:
        wanted = wanted_range(request.headers.get("Range", ""), size)
    except PastTheEnd:
        opened.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    response: HttpResponseBase
    if wanted is None:
        response = FileResponse(opened, content_type=content_type)
    else:
        start, end = wanted
        response = StreamingHttpResponse(
            _read(opened, start, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response
