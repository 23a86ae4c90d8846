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

import dataclasses
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import classify, error_body, json_or_none, reported, scrub
from providers.http import PLAIN, items, obj
from providers.openai_compat import OpenAIChat
from providers.sse import SSEEvent
from providers.tokens import Token, TokenAuth, TokenCache, TokenRefused

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


class IAMTokens(TokenCache):
    """IAM tokens by credential hash, used until ``margin`` seconds before they expire, by
    ``clock``."""

    margin = 600.0
    # A token lives about 24 h (UNCONFIRMED); used when the answer does not say.
    default_lifetime = 24 * 3600.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock

    def token(self, value: str, expires: float | None) -> Token:
        """``value``, expiring at ``expires`` (or after the default lifetime), less the
        margin."""
        if not expires:
            expires = self.clock() + self.default_lifetime
        return Token(value, expires - self.margin)


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


class Pangu(TokenAuth, OpenAIChat):
    name = "pangu"
    display_name = DISPLAY_NAME
    default_base_url = ""  # per deployment: PLAYGROUND_PANGU_BASE_URL
    # The app code is one of two ways in, so it is not required on its own.
    needs_key = False
    key_env = "PANGU_APP_CODE"
    # A private cloud (Huawei Cloud Stack) runs its own IAM: its token URL can be given.
    extra_credentials = {**IAM_CREDENTIALS, "iam_endpoint": "PANGU_IAM_ENDPOINT"}
    # Either the app code or the IAM parts: none is required on its own, and
    # check_credentials says what is missing when neither way in is complete.
    optional_credentials = frozenset(extra_credentials)
    credential_labels = {
        "api_key": "App code",
        "username": "IAM user name",
        "password": "IAM password",
        "domain": "IAM domain (account) name",
        "project": "Project (name or id)",
        "iam_endpoint": "IAM endpoint (private cloud only)",
    }
    # The V1 API's sampling parameters. temperature goes from 0 to 1; max_tokens is model
    # dependent (2048 in the v1 SDK's docs, more on newer models: the API says when).
    params = (
        dataclasses.replace(base.TEMPERATURE, maximum=1),
        base.TOP_P,
        dataclasses.replace(base.MAX_TOKENS, maximum=32768),
        base.PRESENCE_PENALTY,
        base.FREQUENCY_PENALTY,
    )
    # The docs list tool_calls in answers and finish_reason "tool_calls"; the request's
    # ``tools`` field is UNCONFIRMED (sent in OpenAI's shape, only when there are tools).
    supports_tools = True
    send_stream_options = False  # not in the V1 request model
    token_service = f"Huawei Cloud IAM (for {DISPLAY_NAME})"
    finish_reasons = _FINISH_REASONS
    tokens: IAMTokens

    def __init__(self, tokens: IAMTokens | None = None) -> None:
        self.tokens = tokens or _SHARED_TOKENS

    # ----------------------------------------------------------------- request

    def url(self, request: ChatRequest) -> str:
        base_url = self.base_url(request)
        if not base_url:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"No endpoint configured for {self.display_name}: set {BASE_URL_ENV} to the "
                "deployment's URL (https://pangu.<region>.myhuaweicloud.com/v1/<project_id>"
                "/deployments/<deployment_id>).",
                permanent=True,
            )
        if base_url.endswith("/chat/completions"):
            return base_url
        return f"{base_url}/chat/completions"

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
        """The IAM token endpoint: the credential's own (a private cloud's IAM), else the
        one of the deployment's region.

        The region comes from the Pangu host (``pangu.<region>.<domain>``), else from the
        project name (a region's default project is named after it, sub-projects are
        ``<region>_<name>``), else Huawei's global IAM endpoint.
        """
        own = request.credentials.extra.get("iam_endpoint", "").strip().rstrip("/")
        if own:
            return own if own.endswith("/v3/auth/tokens") else f"{own}/v3/auth/tokens"
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

    async def token(self, client: httpx.AsyncClient, request: ChatRequest) -> str:
        return await self.tokens.get(
            self.token_key(request), self.tokens.clock, lambda: self.exchange(client, request)
        )

    def uses_token(self, request: ChatRequest) -> bool:
        return not request.credentials.api_key  # an app code needs none

    async def exchange(self, client: httpx.AsyncClient, request: ChatRequest) -> Token:
        """Trade the IAM user's password for a token."""
        extra = request.credentials.extra
        response, raw = await self.exchange_answer(
            client, request, self.iam_url(request), json=self.iam_body(extra)
        )
        secrets = (extra.get("password", ""), response.headers.get("x-subject-token", ""))
        if not response.is_success:
            message, code = huawei_error(json_or_none(raw))
            detail = scrub(message or raw.decode("utf-8", "replace"), secrets)
            status = response.status_code
            if status in (400, 401, 403, 404):
                words = (
                    f"Huawei Cloud IAM refused the {self.display_name} account (user name, "
                    f"password, domain or project) ({status})"
                )
                if detail:
                    words += f": {detail}"
                raise ProviderError(ErrorKind.AUTH, words, permanent=True, status=status)
            raise base.error_for_status(self.token_service, status, detail, response.headers)
        value = response.headers.get("x-subject-token", "")
        if not value:
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"Huawei Cloud IAM answered without a token for {self.display_name}",
                permanent=False,
            )
        expires = _expiry(obj(obj(json_or_none(raw)).get("token")).get("expires_at"))
        return self.tokens.token(value, expires)

    # ----------------------------------------------------------------- stream

    @asynccontextmanager
    async def send(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[httpx.Response]:
        """The chat request with the app code, else an IAM token (exchanged for, if none is
        cached)."""
        url, body = self.url_and_body(request)
        app_code = request.credentials.api_key
        if app_code:
            headers = {"X-Apig-AppCode": app_code}
        else:
            headers = {"X-Auth-Token": await self.authorized_token(client, request)}
        headers.update(PLAIN)
        async with client.stream("POST", url, json=body, headers=headers) as response:
            yield response

    def secret(self, response: httpx.Response, request: ChatRequest) -> str:
        """The app code or the IAM token the request carried."""
        return response.request.headers.get("X-Auth-Token") or request.credentials.api_key

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        secret, app_code = self.secret(response, request), request.credentials.api_key
        raw = await error_body(response, request.limits)
        message, code = huawei_error(json_or_none(raw))
        detail = scrub(message or raw.decode("utf-8", "replace"), (secret,))
        if code and detail:
            detail = f"{detail} [{code}]"
        error = base.error_for_status(
            self.display_name, response.status_code, detail, response.headers
        )
        credential = "the app code" if app_code else "the IAM token"
        if error.status == 401:
            error.message = error.message.replace("the API key", credential, 1)
            if not app_code:
                # Revoked or expired early: one fresh exchange, then one more try.
                return TokenRefused(error, secret)
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
        return ProviderError(
            kind, reported(words, code, scrub(message, (secret,))), permanent=permanent
        )

    def chunk(self, chunk: dict[str, Any], sse: SSEEvent, key: str) -> dict[str, Any]:
        failure = self.stream_failure(chunk, key)
        if failure is None and sse.event == "error":
            failure = ProviderError(
                ErrorKind.UPSTREAM, f"{self.display_name} reported an error", permanent=False
            )
        if failure is not None:
            raise failure
        # A stream should say "delta"; accept a whole "message" too (UNCONFIRMED).
        choices = [
            {**c, "delta": c.get("delta") or c.get("message")} if isinstance(c, dict) else c
            for c in items(chunk.get("choices"))
        ]
        return {**chunk, "choices": choices}


# --------------------------------------------------------------------------- helpers


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
