"""Huawei Pangu (盘古, ModelArts Studio), PROVIDERS.md §13.

``POST <deployment URL>/chat/completions``, where the deployment URL is per deployment
(``https://pangu.<region>.myhuaweicloud.com/v1/<project_id>/deployments/<deployment_id>``),
so there is no default: set PLAYGROUND_PANGU_BASE_URL.

Two ways in:

- IAM: user name, password, account (domain) name and project are exchanged at
  ``https://iam.<region>.myhuaweicloud.com/v3/auth/tokens`` for a token, which comes back in
  the ``X-Subject-Token`` response header and is sent as ``X-Auth-Token``. Tokens are cached
  per credential set until shortly before they expire; one exchange serves concurrent
  streams; a 401 from Pangu drops the token and exchanges once more.
- App code: the API key is sent as ``X-Apig-AppCode`` (UNCONFIRMED beyond the header name).

The stream is OpenAI-like (UNCONFIRMED in its details, read leniently): SSE ``data:`` chunks
with ``choices[0].delta.content`` / ``reasoning_content``, usage on whichever chunk has it,
``[DONE]`` or a plain end. Errors are Huawei's ``{"error_code", "error_msg"}``, also inside a
200 stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from providers.base import (
    FREQUENCY_PENALTY,
    MAX_TOKENS,
    PRESENCE_PENALTY,
    TEMPERATURE,
    TOP_P,
    ChatRequest,
    ErrorKind,
    Event,
    Finish,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    Usage,
    error_for_status,
)
from providers.http import JSONLines, classify, items, obj, redact
from providers.openai_compat import OpenAIChat, _PendingToolCall
from providers.sse import iter_sse, read_rest

DISPLAY_NAME = "Huawei Pangu"
BASE_URL_ENV = "PLAYGROUND_PANGU_BASE_URL"

IAM_CREDENTIALS = {
    "username": "PANGU_IAM_USER",
    "password": "PANGU_IAM_PASSWORD",
    "domain": "PANGU_IAM_DOMAIN",
    "project": "PANGU_IAM_PROJECT",
}

# Moderation refusals, in the words Huawei's messages use (codes are not documented).
_BLOCKED = re.compile(r"content.?(?:filter|policy|moderation|audit)|sensitive|敏感|审核", re.I)
_PROJECT_ID = re.compile(r"^[0-9a-f]{32}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")  # cn-southwest-2, ap-southeast-1

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    # insufficient_system_resource (generation cut for lack of capacity) is kept as is.
}


# --------------------------------------------------------------------------- IAM tokens


@dataclasses.dataclass(frozen=True)
class IAMToken:
    value: str
    expires: float  # seconds since the epoch


class IAMTokens:
    """IAM tokens by credential hash, reused until ``margin`` seconds before they expire.

    One lock per credential set (and event loop) makes concurrent streams wait for a single
    exchange instead of each starting their own.
    """

    margin = 600.0
    # A token lives about 24 h (UNCONFIRMED); used when the answer does not say.
    default_lifetime = 24 * 3600.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[str, IAMToken] = {}
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def fresh(self, key: str) -> str | None:
        token = self._tokens.get(key)
        if token is None or self.clock() >= token.expires - self.margin:
            return None
        return token.value

    async def get(self, key: str, exchange: Callable[[], Awaitable[IAMToken]]) -> str:
        value = self.fresh(key)
        if value is not None:
            return value
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(key, asyncio.Lock()):
            value = self.fresh(key)  # another stream may have exchanged while we waited
            if value is not None:
                return value
            token = await exchange()
            self._tokens[key] = token
            return token.value

    def forget(self, key: str, value: str) -> None:
        """Drop ``value`` (refused by the server) unless it was already replaced."""
        token = self._tokens.get(key)
        if token is not None and token.value == value:
            del self._tokens[key]


_SHARED_TOKENS = IAMTokens()


# --------------------------------------------------------------------------- errors


def huawei_error(body: Any) -> tuple[str, str]:
    """``(message, code)`` from Huawei's ``{"error_code", "error_msg"}`` (APIG, Pangu), IAM's
    ``{"error": {"code", "message", "title"}}``, or an OpenAI-style ``error`` object."""
    if not isinstance(body, dict):
        return "", ""
    if "error_code" in body or "error_msg" in body:
        return str(body.get("error_msg") or ""), str(body.get("error_code") or "")
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or ""
        return str(error.get("message") or error.get("title") or ""), str(code)
    if isinstance(error, str):
        return error, ""
    return str(body.get("message") or ""), ""


def _kind_of(code: str, message: str) -> tuple[ErrorKind, bool]:
    """Kind and permanence of an error that came without a telling HTTP status."""
    if code.startswith("APIG.0308"):  # the gateway's throttling
        return ErrorKind.RATE_LIMIT, False
    if code.startswith(("APIG.03", "APIG.1")):  # authentication and authorization
        return ErrorKind.AUTH, True
    if _BLOCKED.search(message):
        return ErrorKind.CONTENT_FILTER, True
    return classify(f"{code} {message}")


# --------------------------------------------------------------------------- provider


class Pangu(OpenAIChat):
    name = "pangu"
    display_name = DISPLAY_NAME
    default_base_url = ""  # per deployment: PLAYGROUND_PANGU_BASE_URL
    # The app code is one of two ways in, so it is not required on its own.
    needs_key = False
    key_env = "PANGU_APP_CODE"
    extra_credentials = IAM_CREDENTIALS
    # Either the app code or the IAM parts: none is required on its own, and
    # check_credentials says what is missing when neither way in is complete.
    optional_credentials = frozenset(IAM_CREDENTIALS)
    # The V1 API's sampling parameters. temperature goes from 0 to 1; max_tokens is model
    # dependent (2048 in the v1 SDK's docs, more on newer models: the API says when).
    params = (
        dataclasses.replace(TEMPERATURE, maximum=1),
        TOP_P,
        dataclasses.replace(MAX_TOKENS, maximum=32768),
        PRESENCE_PENALTY,
        FREQUENCY_PENALTY,
    )
    # The docs list tool_calls in answers and finish_reason "tool_calls"; the request's
    # ``tools`` field is UNCONFIRMED (sent in OpenAI's shape, only when there are tools).
    supports_tools = True
    send_stream_options = False  # not in the V1 request model

    def __init__(self, tokens: IAMTokens | None = None) -> None:
        self.tokens = tokens or _SHARED_TOKENS

    # ----------------------------------------------------------------- request

    def url(self, request: ChatRequest) -> str:
        base = self.base_url(request)
        if not base:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"No endpoint configured for {self.display_name}: set {BASE_URL_ENV} to the "
                "deployment's URL (https://pangu.<region>.myhuaweicloud.com/v1/<project_id>"
                "/deployments/<deployment_id>).",
                permanent=True,
            )
        if base.endswith("/chat/completions"):
            return base
        return f"{base}/chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body = super().body(request)
        if "/deployments/" in self.url(request):
            # V1: the deployment is the model; the request model has no ``model`` field.
            del body["model"]
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in request.tools
            ]
        return body

    def check_credentials(self, request: ChatRequest) -> None:
        if request.credentials.api_key:
            return
        extra = request.credentials.extra
        missing = [env for part, env in IAM_CREDENTIALS.items() if not extra.get(part)]
        if missing:
            raise ProviderError(
                ErrorKind.AUTH,
                f"No credentials for {self.display_name}: set {self.key_env} (an app code), "
                f"or the IAM account with {', '.join(IAM_CREDENTIALS.values())} "
                f"({', '.join(missing)} missing).",
                permanent=True,
            )

    # ----------------------------------------------------------------- IAM

    def iam_url(self, request: ChatRequest) -> str:
        """The IAM token endpoint of the deployment's region.

        The region comes from the Pangu host (``pangu.<region>.<domain>``), else from the
        project name (a region's default project is named after it, sub-projects are
        ``<region>_<name>``), else Huawei's global IAM endpoint.
        """
        host = urlsplit(self.base_url(request)).hostname or ""
        labels = host.split(".")
        if len(labels) >= 4 and labels[0] == "pangu" and _REGION.match(labels[1]):
            return f"https://iam.{'.'.join(labels[1:])}/v3/auth/tokens"
        region = request.credentials.extra.get("project", "").split("_")[0]
        if _REGION.match(region):
            return f"https://iam.{region}.myhuaweicloud.com/v3/auth/tokens"
        return "https://iam.myhuaweicloud.com/v3/auth/tokens"

    @staticmethod
    def iam_body(extra: Mapping[str, str]) -> dict[str, Any]:
        project = extra["project"]
        # A 32-hex-digit project is an id; anything else is a name (usually the region).
        scope = {"id": project} if _PROJECT_ID.match(project) else {"name": project}
        user: dict[str, Any] = {
            "name": extra["username"],
            "password": extra["password"],
            "domain": {"name": extra["domain"]},
        }
        return {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": scope},
            }
        }

    def token_key(self, request: ChatRequest) -> str:
        extra = request.credentials.extra
        parts = [self.iam_url(request), *(extra.get(p, "") for p in IAM_CREDENTIALS)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    async def exchange(self, client: httpx.AsyncClient, request: ChatRequest) -> IAMToken:
        """Trade the IAM user's password for a token."""
        extra = request.credentials.extra
        response = await client.post(self.iam_url(request), json=self.iam_body(extra))
        secrets = (extra.get("password", ""), response.headers.get("x-subject-token", ""))
        if not response.is_success:
            message, code = huawei_error(_json(response.content))
            detail = _clean(message or response.text, secrets)
            status = response.status_code
            if status in (400, 401, 403, 404):
                words = (
                    f"Huawei Cloud IAM refused the {self.display_name} account (user name, "
                    f"password, domain or project) ({status})"
                )
                if detail:
                    words += f": {detail}"
                raise ProviderError(ErrorKind.AUTH, words, permanent=True, status=status)
            raise error_for_status(
                f"Huawei Cloud IAM (for {self.display_name})", status, detail, response.headers
            )
        value = response.headers.get("x-subject-token", "")
        if not value:
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"Huawei Cloud IAM answered without a token for {self.display_name}",
                permanent=False,
            )
        expires = _expiry(obj(obj(_json(response.content)).get("token")).get("expires_at"))
        return IAMToken(value, expires or self.tokens.clock() + self.tokens.default_lifetime)

    # ----------------------------------------------------------------- stream

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[Event]:
        url, body = self.url(request), self.body(request)
        app_code = request.credentials.api_key
        key = "" if app_code else self.token_key(request)
        for attempt in (1, 2):
            if app_code:
                headers, secret = {"X-Apig-AppCode": app_code}, app_code
            else:
                secret = await self.tokens.get(key, lambda: self.exchange(client, request))
                headers = {"X-Auth-Token": secret}
            async with client.stream("POST", url, json=body, headers=headers) as response:
                if response.status_code == 401 and not app_code and attempt == 1:
                    # Revoked or expired early: one fresh exchange, then one more try.
                    await response.aread()
                    self.tokens.forget(key, secret)
                    continue
                if not response.is_success:
                    raise await self.pangu_status_error(response, secret, app_code)
                async with aclosing(self.read_events(response, secret)) as events:
                    async for event in events:
                        yield event
                return

    async def pangu_status_error(
        self, response: httpx.Response, secret: str, app_code: str
    ) -> ProviderError:
        raw = await response.aread()
        message, code = huawei_error(_json(raw))
        detail = _clean(message or raw.decode("utf-8", "replace"), (secret,))
        if code and detail:
            detail = f"{detail} [{code}]"
        error = error_for_status(self.display_name, response.status_code, detail, response.headers)
        credential = "the app code" if app_code else "the IAM token"
        if error.status == 401:
            error.message = error.message.replace("the API key", credential, 1)
        elif error.status == 403:
            error.message = error.message.replace("this key", credential, 1)
        elif code.startswith("APIG.0308") and error.kind is not ErrorKind.RATE_LIMIT:
            return ProviderError(
                ErrorKind.RATE_LIMIT,
                error.message,
                permanent=False,
                status=error.status,
                retry_after=error.retry_after,
            )
        return error

    def stream_failure(self, body: Mapping[str, Any], secret: str) -> ProviderError | None:
        """The error a chunk carries (``error_code``/``error_msg`` or ``error``), if any."""
        if not (body.get("error_code") or body.get("error_msg") or body.get("error")):
            return None
        message, code = huawei_error(body)
        kind, permanent = _kind_of(code, message)
        words = f"{self.display_name} reported an error"
        if code:
            words += f" ({code})"
        detail = _clean(message, (secret,))
        if detail:
            words += f": {detail}"
        return ProviderError(kind, words, permanent=permanent)

    async def read_events(self, response: httpx.Response, key: str) -> AsyncGenerator[Event, None]:
        lines = JSONLines(self.display_name)
        tools: dict[int, _PendingToolCall] = {}
        finish: str | None = None
        usage: Usage | None = None
        done = False
        events = iter_sse(response)
        async for sse in events:
            data = sse.data.strip()
            if not data:
                continue
            if data == "[DONE]":
                done = True
                break
            chunk = lines.decode(data)
            if chunk is None:
                continue
            failure = self.stream_failure(chunk, key)
            if failure is None and sse.event == "error":
                failure = ProviderError(
                    ErrorKind.UPSTREAM, f"{self.display_name} reported an error", permanent=False
                )
            if failure is not None:
                raise failure
            if isinstance(chunk.get("usage"), dict):
                usage = self.usage(chunk["usage"])
            for choice in items(chunk.get("choices")):
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                # A stream should say "delta"; accept a whole "message" too (UNCONFIRMED).
                delta = obj(choice.get("delta") or choice.get("message"))
                reasoning = delta.get("reasoning_content")
                if isinstance(reasoning, str) and reasoning:
                    yield ReasoningDelta(reasoning)
                content = delta.get("content")
                if isinstance(content, str) and content:
                    yield TextDelta(content)
                for fragment in items(delta.get("tool_calls")):
                    self.add_tool_fragment(tools, fragment)
                reason = choice.get("finish_reason")
                if isinstance(reason, str) and reason and reason != "null":
                    finish = reason
        if finish is None and not (done and lines.good):
            return  # cut short: no Finish, the caller reports it
        calls = self.tool_calls(tools)
        for call in calls:
            yield call
        if usage is not None:
            yield usage
        if finish is None:
            finish = "tool_calls" if calls else "stop"
        yield Finish(_FINISH_REASONS.get(finish, finish))
        await read_rest(events)  # the connection is kept for the next answer


# --------------------------------------------------------------------------- helpers


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = redact(text, secret)
    return " ".join(redact(text).split())[:300]


def _expiry(value: Any) -> float | None:
    """Seconds since the epoch of IAM's ``token.expires_at`` (ISO 8601, UTC)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()
