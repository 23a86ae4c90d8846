"""What the HTTP adapters share: :class:`HTTPProvider`, the one streaming POST, and small
helpers for reading error bodies, classifying in-stream errors, keeping keys out of
messages and decoding JSON leniently."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from typing import Any

import httpx

from providers.base import ChatRequest, ErrorKind, Event, Provider, ProviderError, error_for_status

log = logging.getLogger(__name__)

# Things that look like API keys, in case a vendor echoes a (partly masked) key back.
_KEYLIKE = re.compile(r"\b(?:(?:sk|xai)-[-_A-Za-z0-9*]{8,}|AIza[-_A-Za-z0-9]{30,})")


def redact(text: str, secret: str = "") -> str:
    """``text`` with ``secret`` and anything shaped like an API key blanked out."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def scrub(text: str, secrets: Sequence[str] = (), keylike: re.Pattern[str] | None = None) -> str:
    """``text`` as a message detail: on one line, at most 300 characters, without any of
    ``secrets``, anything shaped like an API key, or what the vendor's own ``keylike``
    pattern matches."""
    for secret in secrets:
        text = redact(text, secret)
    text = redact(text)
    if keylike is not None:
        text = keylike.sub("[redacted]", text)
    return " ".join(text.split())[:300]


def error_details(body: Any) -> tuple[str, str]:
    """``(message, code)`` from a decoded error body of any of the usual shapes.

    ``{"error": {"message", "type"|"code"|"status"}}`` (OpenAI, Anthropic, Gemini),
    ``{"error": "text"}`` (Ollama, some xAI errors), ``{"message": …}``, and Google's
    streaming endpoints' ``[{"error": …}]``.
    """
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error", body)
    if isinstance(error, str):
        code = body.get("code")
        return error, str(code) if isinstance(code, str) else ""
    if not isinstance(error, dict):
        return "", ""
    message = error.get("message")
    code = next(
        (
            str(error[k])
            for k in ("type", "status", "code")
            if isinstance(error.get(k), str) and error[k]
        ),
        "",
    )
    return (message if isinstance(message, str) else ""), code


def body_message(raw: bytes) -> str:
    """The human part of an error body: its ``error.message`` if JSON, else the text."""
    text = raw.decode("utf-8", "replace")
    try:
        message, _ = error_details(json.loads(text))
    except ValueError:
        return text
    return message or text


async def http_error(
    provider: str, response: httpx.Response, secret: str = ""
) -> tuple[ProviderError, Any]:
    """Read a non-2xx response and return its :class:`ProviderError` and decoded body.

    The body is returned (``None`` if not JSON) so adapters can look for vendor hints.
    """
    raw = await response.aread()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = None
    detail = redact(body_message(raw), secret)
    return error_for_status(provider, response.status_code, detail, response.headers), body


def stream_error(provider: str, body: Mapping[str, Any], secret: str = "") -> ProviderError:
    """A ``{"error": …}`` object that arrived inside a 200 stream, as a ProviderError.

    Whether it is worth retrying is guessed from its type or code: rate limits and server
    trouble are retried, a bad key or a refused request are not.
    """
    message, code = error_details(dict(body))
    error = body.get("error")
    if not code and isinstance(error, dict) and isinstance(error.get("code"), int):
        code = str(error["code"])
    kind, permanent = classify(code) if code else (ErrorKind.UPSTREAM, False)
    if kind is ErrorKind.UPSTREAM:
        kind, permanent = classify(message)
    words = f"{provider} reported an error"
    if code:
        words += f" ({code})"
    message = " ".join(redact(message, secret).split())[:300]
    if message:
        words += f": {message}"
    return ProviderError(kind, words, permanent=permanent)


_KINDS: tuple[tuple[re.Pattern[str], ErrorKind, bool], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind, permanent)
    for pattern, kind, permanent in (
        (r"insufficient_quota|billing_error|insufficient.balance", ErrorKind.AUTH, True),
        (r"rate.?limit|resource_exhausted|too.many.requests|\b429\b", ErrorKind.RATE_LIMIT, False),
        (
            r"authentication|unauthenticated|invalid_api_key|permission|\b40[13]\b",
            ErrorKind.AUTH,
            True,
        ),
        (r"content_filter|content_policy", ErrorKind.CONTENT_FILTER, True),
        (
            r"invalid_request|invalid_argument|bad_request|context_length|not_found|\b40[04]\b",
            ErrorKind.BAD_REQUEST,
            True,
        ),
        (r"timeout|deadline_exceeded", ErrorKind.TIMEOUT, False),
    )
)


def classify(words: str) -> tuple[ErrorKind, bool]:
    """Guess an error's kind and permanence from its type, code and message; unknown
    errors count as the provider's own trouble, worth another try."""
    for pattern, kind, permanent in _KINDS:
        if pattern.search(words):
            return kind, permanent
    return ErrorKind.UPSTREAM, False


class JSONLines:
    """Decodes ``data:`` payloads, skipping (and counting) the ones that are not JSON objects."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.good = 0
        self.bad = 0

    def decode(self, data: str) -> dict[str, Any] | None:
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.bad += 1
            # The payload itself is not logged: it is model output, and could be anything.
            log.warning("%s: skipped a malformed stream line (%d so far)", self.provider, self.bad)
            return None
        self.good += 1
        return value


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


def to_send(params: Mapping[str, Any], *names: str, **renamed: str) -> dict[str, Any]:
    """The parameters of ``names`` and ``renamed`` that are set in ``params``, in that
    order: ``names`` as they are, ``renamed`` under the API's own names."""
    wire = {**{name: name for name in names}, **renamed}
    return {wire[name]: params[name] for name in wire if params.get(name) is not None}


def int_or_none(value: Any) -> int | None:
    """``value`` if it is a JSON whole number (``true`` is not one), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def json_or_none(raw: bytes) -> Any:
    """``raw`` decoded as JSON, or ``None`` if it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


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
        return client.stream("POST", url, json=body, headers=self.headers(request))

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        async with self.send(client, request) as response:
            if not response.is_success:
                raise await self.status_error(response, request)
            async with aclosing(self.read_events(response, request)) as events:
                async for event in events:
                    yield event

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        """A non-2xx answer as a :class:`ProviderError`: the status's sentence with the body's
        message, the key kept out, Retry-After honoured."""
        error, _ = await http_error(self.display_name, response, request.credentials.api_key)
        return error

    def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        """The events of a 2xx answer; raise :class:`ProviderError` for an error in it."""
        raise NotImplementedError
