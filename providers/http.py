"""What the HTTP adapters share: :class:`HTTPProvider`, the one streaming POST, and small
helpers for decoding JSON leniently and naming parameters on the wire. The error sentences
are in :mod:`providers.errors`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing
from typing import Any

import httpx

from providers.base import (
    ChatRequest,
    Event,
    Provider,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    no_first_byte,
)
from providers.errors import http_error

log = logging.getLogger(__name__)


class JSONLines:
    """Decodes ``data:`` payloads, skipping (and counting) the ones that are not JSON objects."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.good = 0
        self.bad = 0

    def decode(self, data: str) -> dict[str, Any] | None:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            self.bad += 1
            # The payload itself is not logged: it is model output, and could be anything.
            log.warning("%s: skipped a malformed stream line (%d so far)", self.provider, self.bad)
            return None
        self.good += 1
        return value


#: Asked of every provider call: the answer as it is, not compressed, so that the bounds of
#: :mod:`providers.reading` count what arrives. (httpx asks for gzip and deflate unless told
#: otherwise; a server that compresses anyway is decoded there, a piece at a time.)
PLAIN = {"Accept-Encoding": "identity"}


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def drop_empty(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the keys whose value is ``None`` or an empty dict/list/string."""
    return {k: v for k, v in values.items() if v is not None and v != {} and v != [] and v != ""}


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: unexpected shapes read as absent."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def deltas(reasoning: Any, text: Any) -> list[Event]:
    """A :class:`ReasoningDelta` and a :class:`TextDelta` for whichever of ``reasoning``
    and ``text`` is text that is not empty, the reasoning first."""
    events: list[Event] = []
    if isinstance(reasoning, str) and reasoning:
        events.append(ReasoningDelta(reasoning))
    if isinstance(text, str) and text:
        events.append(TextDelta(text))
    return events


def to_send(params: Mapping[str, Any], *names: str, **renamed: str) -> dict[str, Any]:
    """The parameters of ``names`` and ``renamed`` that are set in ``params``, in that
    order: ``names`` as they are, ``renamed`` under the API's own names."""
    wire = {**{name: name for name in names}, **renamed}
    return {wire[name]: params[name] for name in wire if params.get(name) is not None}


def int_or_none(value: Any) -> int | None:
    """``value`` if it is a JSON whole number (``true`` is not one), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def lines_of(raw: bytes) -> AsyncIterator[str]:
    """The lines of a body already read whole, as a stream reader takes them."""
    for line in raw.decode("utf-8", "replace").splitlines():
        yield line


# --------------------------------------------------------------------------- adapter


class HTTPProvider(Provider):
    """An adapter that POSTs one request and reads the answer from the streamed response.

    :meth:`open_stream` is written once here: :meth:`send` the request, turn a non-2xx
    answer into :meth:`status_error`'s error, else yield what :meth:`read_events` reads.
    Subclasses give :meth:`url`, :meth:`body` and :meth:`read_events`, and override the
    other hooks only where their API differs.
    """

    def url(self, request: ChatRequest) -> str:
        raise NotImplementedError

    def body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self, request: ChatRequest) -> dict[str, str]:
        return bearer(request.credentials.api_key)

    def send(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AbstractAsyncContextManager[httpx.Response]:
        """The streaming request: :meth:`body` as JSON to :meth:`url` with :meth:`headers`
        (in that order, so a bad URL is said before a bad body)."""
        url, body = self.url(request), self.body(request)
        return client.stream("POST", url, json=body, headers={**self.headers(request), **PLAIN})

    async def authorize(self, client: httpx.AsyncClient, request: ChatRequest) -> None:
        """What must be had before the request is sent (a token, by exchange), within the
        first-byte wait; :meth:`authorize_timed_out` says it when the wait ran out here.
        Nothing by default."""

    def authorize_timed_out(self, request: ChatRequest) -> ProviderError:
        return no_first_byte(self.display_name, request.limits, shared=request.first_byte_shared)

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        async with AsyncExitStack() as stack:
            authorized = False
            try:
                async with asyncio.timeout(request.first_byte_wait):
                    await self.authorize(client, request)
                    authorized = True
                    response = await stack.enter_async_context(self.send(client, request))
            except TimeoutError:
                if not authorized:
                    raise self.authorize_timed_out(request) from None
                raise no_first_byte(
                    self.display_name, request.limits, shared=request.first_byte_shared
                ) from None
            if not response.is_success:
                raise await self.status_error(response, request)
            async with aclosing(self.read_events(response, request)) as events:
                async for event in events:
                    yield event

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        """A non-2xx answer as a :class:`ProviderError`: the status's sentence with the body's
        message, the key kept out, Retry-After honoured."""
        error, _ = await http_error(
            self.display_name, response, request.credentials.api_key, request.limits
        )
        return error

    def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        """The events of a 2xx answer; raise :class:`ProviderError` for an error in it."""
        raise NotImplementedError
