"""Error sentences: reading vendors' error bodies, classifying in-stream errors, and keeping
keys out of every message."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from providers.base import ErrorKind, ProviderError, ReadLimits, error_for_status
from providers.reading import read_capped

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
    except (ValueError, RecursionError):
        return text
    return message or text


def json_or_none(raw: bytes | str) -> Any:
    """``raw`` decoded as JSON, or ``None`` if it is not JSON (or nests too deeply to read)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


async def error_body(response: httpx.Response, limits: ReadLimits | None = None) -> bytes:
    """A non-2xx answer's body, for its message: at most ``limits.error_body_bytes`` of it
    (the rest is not read, and the connection closed)."""
    return await read_capped(response, limits or ReadLimits())


async def http_error(
    provider: str, response: httpx.Response, secret: str = "", limits: ReadLimits | None = None
) -> tuple[ProviderError, Any]:
    """Read a non-2xx response (at most ``limits.error_body_bytes`` of it) and return its
    :class:`ProviderError` and decoded body.

    The body is returned (``None`` if not JSON) so adapters can look for vendor hints.
    """
    raw = await error_body(response, limits)
    body = json_or_none(raw)
    detail = redact(body_message(raw), secret)
    return error_for_status(provider, response.status_code, detail, response.headers), body


def status_sentence(
    provider: str,
    response: httpx.Response,
    raw: bytes,
    secrets: Sequence[str] = (),
    keylike: re.Pattern[str] | None = None,
) -> ProviderError:
    """A non-2xx answer ``raw`` without a vendor error code in it, as the status's sentence
    with the body's own message (scrubbed of ``secrets``) as its detail."""
    detail = scrub(body_message(raw), secrets, keylike)
    return error_for_status(provider, response.status_code, detail, response.headers)


def reported(words: str, code: str = "", detail: str = "") -> str:
    """How an error with the vendor's own code reads: ``words``, then `` (code)`` and
    ``: detail`` where there are any."""
    if code:
        words += f" ({code})"
    if detail:
        words += f": {detail}"
    return words


#: Reads back the code and detail of a sentence :func:`stream_error` wrote, for adapters
#: that know the vendor's codes better.
REPORTED = re.compile(r"^.+? reported an error \((?P<code>[^)]*)\)(?:: (?P<detail>.*))?$", re.S)


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
    words = reported(f"{provider} reported an error", code, scrub(message, (secret,)))
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


def by_kind(
    *groups: tuple[ErrorKind, bool, Mapping[str, str]],
) -> dict[str, tuple[ErrorKind, bool, str]]:
    """A vendor's error-code table, written as groups of one kind and permanence, each
    mapping codes to their sentences: as one table, code to (kind, permanent, sentence)."""
    return {
        code: (kind, permanent, words)
        for kind, permanent, sentences in groups
        for code, words in sentences.items()
    }


def classify(words: str) -> tuple[ErrorKind, bool]:
    """Guess an error's kind and permanence from its type, code and message; unknown
    errors count as the provider's own trouble, worth another try."""
    for pattern, kind, permanent in _KINDS:
        if pattern.search(words):
            return kind, permanent
    return ErrorKind.UPSTREAM, False
