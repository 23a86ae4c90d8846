"""Baidu Qianfan / ERNIE (文心), PROVIDERS.md §8.

Two APIs:

- :class:`QianfanV1`, the legacy one (§8a): the app's API key (AK) and secret key (SK) are
  exchanged at ``POST {base}/oauth/2.0/token?grant_type=client_credentials&client_id=AK&
  client_secret=SK`` for an ``access_token``, which goes on the chat URL
  ``{base}/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/<endpoint>?access_token=…``. Tokens are
  cached per credential pair (by hash) until shortly before they expire; one exchange
  serves concurrent streams; an "access token invalid/expired" answer (110, 111) drops the
  token, exchanges once more and tries once more. The stream is SSE ``data:`` chunks with
  ``result`` deltas, ending on ``is_end: true`` (no ``[DONE]``); errors are bare JSON
  ``{"error_code", "error_msg"}`` on HTTP 200, as the whole body or as a line in the stream.
- :class:`Qianfan`, v2 (§8b): the OpenAI Chat Completions format with a bearer key
  (``bce-v3/ALTAK-…/…``) and an optional ``appid`` header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any, ClassVar

import httpx

from providers import base, reading
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import (
    by_kind,
    classify,
    error_body,
    json_or_none,
    reported,
    scrub,
    status_sentence,
)
from providers.http import PLAIN, JSONLines, bearer, int_or_none, lines_of, obj, to_send
from providers.openai_compat import ALL_SAMPLING, OpenAIChat, PendingToolCall
from providers.sse import SSEEvent, iter_sse_lines, read_rest
from providers.tokens import Token, TokenAuth, TokenCache, TokenRefused

DISPLAY_NAME = "Baidu Qianfan"

V1_BASE_URL = "https://aip.baidubce.com"
OAUTH_PATH = "/oauth/2.0/token"
CHAT_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"

PENALTY_SCORE = base.Param(
    "penalty_score",
    "Penalty score",
    "float",
    "Push against repeating what was already said (1 means no penalty).",
    1,
    2,
)

# The legacy model names whose endpoint is not their own name (bce-qianfan-sdk's model
# table). Any other model id is taken as the endpoint itself, lower-cased: the current
# models (ernie-4.0-8k-latest, ernie-speed-128k, …) and custom deployments are named so.
V1_ENDPOINTS: Mapping[str, str] = {
    "ernie-bot": "completions",
    "ernie-3.5-8k": "completions",
    "ernie-bot-4": "completions_pro",
    "ernie-4.0-8k": "completions_pro",
    "ernie-bot-8k": "ernie_bot_8k",
    "ernie-bot-turbo": "eb-instant",
    "ernie-speed": "ernie_speed",
    "ernie-speed-8k": "ernie_speed",
}

_FINISH_REASONS = {
    # ERNIE's finish_reason (UNCONFIRMED in §8a; from Baidu's ERNIE API reference):
    # "normal" is a complete answer, the others as their names say.
    "normal": "stop",
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
    "tool_calls": "tool_calls",
}


# --------------------------------------------------------------------------- errors

# v1 error codes (§8a table, completed from bce-qianfan-sdk's consts.py and Baidu's
# published error-code list): kind, whether another try can help, and the sentence.
_CODES = by_kind(
    (
        ErrorKind.UPSTREAM,
        False,
        {
            "1": "{p} had an internal error",
            "2": "{p} is temporarily unavailable",
            "15": "{p} could not find or create the app",
            "336000": "{p} had an internal error",
            "336100": "{p} is under heavy load",
        },
    ),
    (
        ErrorKind.BAD_REQUEST,
        True,
        {
            "3": "{p} does not know this API",
            "336001": "{p} refused the request",
            "336002": "{p} refused the request as invalid JSON",
            "336003": "{p} refused a parameter",
            "336005": "{p} does not know this model endpoint",
            "336101": "{p} refused the request",
            "336104": "{p} refused the request",
            "336105": "{p} refused the request",
        },
    ),
    (
        ErrorKind.RATE_LIMIT,
        False,
        {
            "4": "Rate limited by {p}: its cluster is over its limit",
            "18": "Rate limited by {p}",
            "336501": "Rate limited by {p}",  # requests per minute
            "336502": "Rate limited by {p}",  # tokens per minute
            # The rate-limit page also shows these as string codes (and {"code", "msg"}).
            "rpm_rate_limit_exceeded": "Rate limited by {p}",
            "tpm_rate_limit_exceeded": "Rate limited by {p}",
        },
    ),
    (
        ErrorKind.RATE_LIMIT,
        True,
        {
            "17": "{p}'s daily request limit is reached (or billing is off)",
            "19": "{p}'s total request limit is reached",
        },
    ),
    (
        ErrorKind.AUTH,
        True,
        {
            "6": "{p} refused access: the app has no permission for this service",
            "13": "{p} could not issue a service token",
            "14": "{p} refused the credentials (IAM check failed)",
            "100": "{p} refused the access token",
            "110": "{p} says the access token is invalid",
            "111": "{p} says the access token has expired",
            "336004": "{p} refused access for these credentials",
        },
    ),
)

#: "Access token invalid" and "expired": a fresh token may fix them (§8a).
TOKEN_EXPIRED_CODES = frozenset({"110", "111"})

# §8a lists no moderation code; a refusal for content is recognised by its words
# (UNCONFIRMED which codes carry them).
_BLOCKED = re.compile(r"sensitive|unsafe|content.?(?:filter|safety|risk)|敏感|安全|违规", re.I)
_BCE_KEY = re.compile(r"bce-v3/ALTAK-[^\s\"',]+")


def error_fields(body: Any) -> tuple[str, str] | None:
    """``(code, message)`` of an error object, or ``None`` if ``body`` is not one.

    v1 says ``{"error_code", "error_msg"}``; the rate-limit page shows ``{"code", "msg"}``
    and v2 ``{"error": {"code", "message"}}``: all three are read.
    """
    if not isinstance(body, dict):
        return None
    if body.get("error_code") not in (None, 0, "0", ""):
        return str(body["error_code"]), str(body.get("error_msg") or "")
    error = body.get("error")
    if isinstance(error, dict) and (error.get("code") or error.get("message")):
        return str(error.get("code") or error.get("type") or ""), str(error.get("message") or "")
    if "result" not in body and body.get("code") not in (None, 0, "0", "") and "msg" in body:
        return str(body["code"]), str(body.get("msg") or "")
    return None


def code_error(
    code: str,
    message: str,
    secrets: Sequence[str] = (),
    *,
    provider: str = DISPLAY_NAME,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """A Qianfan error code and message as a :class:`ProviderError`."""
    detail = scrub(message, secrets, _BCE_KEY)
    if code in _CODES:
        kind, permanent, words = _CODES[code]
    elif _BLOCKED.search(message):
        kind, permanent, words = ErrorKind.CONTENT_FILTER, True, "{p} blocked the content"
    else:
        kind, permanent = classify(f"{code} {message}")
        words = "{p} reported an error"
    text = reported(words.format(p=provider), code, detail)
    retry_after = base.retry_after_seconds(headers) if headers is not None else None
    return ProviderError(kind, text, permanent=permanent, status=status, retry_after=retry_after)


# --------------------------------------------------------------------------- tokens


class AccessTokens(TokenCache):
    """v1 access tokens by a hash of the AK/SK pair, used until shortly before they expire."""

    #: Stop using a token this long before it expires (half its life if that is shorter).
    margin = 3600.0
    #: Assumed lifetime when the answer has no ``expires_in`` (about 30 days is typical,
    #: UNCONFIRMED in §8a; a day is the cautious guess).
    default_lifetime = 24 * 3600.0

    def token(self, value: str, lifetime: float, now: float) -> Token:
        """``value``, valid for ``lifetime`` seconds from ``now``, less the margin."""
        return Token(value, now + lifetime - min(self.margin, lifetime / 2))


#: The process-wide cache every :class:`QianfanV1` uses unless given another.
TOKENS = AccessTokens()


def token_key(token_url: str, api_key: str, secret_key: str) -> str:
    return hashlib.sha256(f"{token_url}\0{api_key}\0{secret_key}".encode()).hexdigest()


# --------------------------------------------------------------------------- v1


class QianfanV1(TokenAuth):
    """ERNIE on the legacy v1 API (§8a): AK/SK → access token, ``result`` chunks."""

    name = "qianfan_v1"
    display_name = DISPLAY_NAME
    default_base_url = V1_BASE_URL
    key_env = "QIANFAN_ACCESS_KEY"  # the app's API Key (AK)
    extra_credentials: ClassVar[Mapping[str, str]] = {"secret_key": "QIANFAN_SECRET_KEY"}
    credential_labels: ClassVar[Mapping[str, str]] = {
        "api_key": "API Key (AK)",
        "secret_key": "Secret Key (SK)",
    }
    token_service = f"{DISPLAY_NAME} (token exchange)"
    supports_tools = True  # ERNIE "functions"
    supports_images = False  # not on these chat endpoints (§8a)
    # Bounds from Baidu's ERNIE reference: temperature (0, 1], top_p [0, 1], penalty_score
    # [1, 2], max_output_tokens from 2 (the top is 2048 or 4096 by model; the API says
    # which), at most 4 stop words.
    params = (
        dataclasses.replace(
            base.TEMPERATURE,
            minimum=0.01,
            maximum=1,
            description="Randomness of sampling (0 to 1).",
        ),
        base.TOP_P,
        PENALTY_SCORE,
        dataclasses.replace(base.MAX_TOKENS, minimum=2, maximum=4096),
        base.STOP,
    )

    tokens: AccessTokens

    def __init__(
        self, *, clock: Callable[[], float] = time.time, tokens: AccessTokens | None = None
    ) -> None:
        self.clock = clock
        self.tokens = TOKENS if tokens is None else tokens

    def check_credentials(self, request: ChatRequest) -> None:
        creds = request.credentials
        self.require(
            "an API key and a secret key",
            (
                (creds.api_key, self.key_env),
                (creds.extra.get("secret_key"), self.extra_credentials["secret_key"]),
            ),
        )

    # ----------------------------------------------------------------- request

    def token_url(self, request: ChatRequest) -> str:
        return f"{self.base_url(request)}{OAUTH_PATH}"

    def chat_url(self, request: ChatRequest) -> str:
        model = request.model.strip()
        endpoint = V1_ENDPOINTS.get(model.lower(), model.lower())
        if not endpoint or "/" in endpoint or "?" in endpoint:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{self.display_name} needs a model endpoint name like ernie-4.0-8k-latest; "
                f"got {request.model!r}.",
                permanent=True,
            )
        return f"{self.base_url(request)}{CHAT_PATH}{endpoint}"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        if request.images:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{self.display_name} (v1) cannot take images; remove them from the turn.",
                permanent=True,
            )
        # user and assistant turns only; the system prompt is a top-level field (§8a).
        messages = [{"role": m.role, "content": m.text} for m in request.conversation]
        body: dict[str, Any] = {"messages": messages, "stream": True}
        if request.system_prompt:
            body["system"] = request.system_prompt
        params = request.params
        body.update(
            to_send(params, "temperature", "top_p", "penalty_score", max_tokens="max_output_tokens")
        )
        if params.get("stop"):
            body["stop"] = list(params["stop"])
        if request.tools:
            body["functions"] = [
                {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": dict(t.parameters),
                }
                for t in request.tools
            ]
        return body

    # ----------------------------------------------------------------- token exchange

    def url_and_body(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        return self.chat_url(request), self.body(request)

    def token_key(self, request: ChatRequest) -> str:
        ak, sk = request.credentials.api_key, request.credentials.extra.get("secret_key", "")
        return token_key(self.token_url(request), ak, sk)

    async def token(self, client: httpx.AsyncClient, request: ChatRequest) -> str:
        return await self.tokens.get(
            self.token_key(request), self.clock, lambda: self.exchange(client, request)
        )

    async def exchange(self, client: httpx.AsyncClient, request: ChatRequest) -> Token:
        """Trade AK and SK for an access token."""
        ak, sk = request.credentials.api_key, request.credentials.extra.get("secret_key", "")
        query = {"grant_type": "client_credentials", "client_id": ak, "client_secret": sk}
        response, raw = await self.exchange_answer(
            client, request, self.token_url(request), params=query
        )
        body = json_or_none(raw)
        fault = obj(body).get("error")
        if fault or not response.is_success:
            described = obj(body).get("error_description")
            detail = scrub(
                " ".join(str(x) for x in (fault, described) if x) or raw.decode("utf-8", "replace"),
                (ak, sk),
                _BCE_KEY,
            )
            if fault == "invalid_client" or response.status_code in (400, 401, 403):
                words = f"{self.display_name} rejected the API key or secret key"
                status = response.status_code if not response.is_success else None
                if status is not None:
                    words += f" ({status})"
                if detail:
                    words += f": {detail}"
                raise ProviderError(ErrorKind.AUTH, words, permanent=True, status=status)
            if response.is_success:
                raise ProviderError(
                    ErrorKind.UPSTREAM,
                    f"{self.display_name} could not issue an access token: {detail}",
                    permanent=False,
                )
            raise base.error_for_status(
                self.token_service,
                response.status_code,
                detail,
                response.headers,
            )
        token = obj(body).get("access_token")
        if not isinstance(token, str) or not token:
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"{self.display_name} answered the token exchange without an access token",
                permanent=False,
            )
        lifetime = obj(body).get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = self.tokens.default_lifetime
        return self.tokens.token(token, float(lifetime), self.clock())

    # ----------------------------------------------------------------- stream

    @asynccontextmanager
    async def send(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[httpx.Response]:
        """The chat request, with an access token (exchanged for, if none is cached) on the
        URL."""
        url, body = self.url_and_body(request)
        token = await self.authorized_token(client, request)
        query = {"access_token": token}
        async with client.stream("POST", url, params=query, json=body, headers=PLAIN) as sent:
            yield sent

    @staticmethod
    def secrets(response: httpx.Response, request: ChatRequest) -> tuple[str, ...]:
        """What to keep out of messages: the AK, the SK and the token the request carried."""
        token = response.request.url.params.get("access_token", "")
        return (request.credentials.api_key, request.credentials.extra.get("secret_key", ""), token)

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        secrets = self.secrets(response, request)
        raw = await error_body(response, request.limits)
        fields = error_fields(json_or_none(raw))
        if fields is None:
            return status_sentence(self.display_name, response, raw, secrets, _BCE_KEY)
        return self.failure(*fields, secrets, response, started=False)

    def failure(
        self,
        code: str,
        message: str,
        secrets: Sequence[str],
        response: httpx.Response,
        *,
        started: bool,
    ) -> ProviderError:
        """The error for a v1 error code; one that refuses the token before any answer came
        is a :class:`TokenRefused`, worth a fresh token."""
        error = code_error(
            code,
            message,
            secrets,
            provider=self.display_name,
            status=None if response.is_success else response.status_code,
            headers=response.headers,
        )
        if code in TOKEN_EXPIRED_CODES and not started:
            return TokenRefused(error, response.request.url.params.get("access_token", ""))
        return error

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        secrets = self.secrets(response, request)
        chunks: AsyncGenerator[dict[str, Any], None]
        if "json" in response.headers.get("content-type", "").lower():
            # Not a stream: an error (or, unasked, a whole answer) as one JSON body. Read
            # whole, so that a pretty-printed body parses too.
            raw = await reading.read_whole(response, request.limits, self.display_name)
            body = json_or_none(raw)
            if isinstance(body, dict):
                chunks = _one(body)
            else:
                chunks = self.chunks(lines_of(raw), request.limits)
        else:
            lines = reading.lines(response, request.limits, self.display_name)
            chunks = self.chunks(lines, request.limits)
        started = False
        text_seen = False
        calls: list[PendingToolCall] = []
        budget = base.ToolCallBudget(self.display_name, request.limits)
        usage: base.Usage | None = None
        reason: str | None = None
        blocked = truncated = False
        async with aclosing(chunks):
            async for chunk in chunks:
                fields = error_fields(chunk)
                if fields is not None:
                    raise self.failure(*fields, secrets, response, started=started)
                text = chunk.get("result")
                if isinstance(text, str) and text:
                    started = text_seen = True
                    yield base.TextDelta(text)
                call = chunk.get("function_call")
                if isinstance(call, dict):
                    started = True
                    _add_call(calls, call, budget)
                if isinstance(chunk.get("usage"), dict):
                    usage = _usage(chunk["usage"]) or usage  # repeated; the last is final
                if chunk.get("need_clear_history") is True:
                    blocked = True  # the input was judged unsafe; the answer is a refusal
                if chunk.get("is_truncated") is True:
                    truncated = True
                finish = chunk.get("finish_reason")
                if isinstance(finish, str) and finish:
                    reason = finish
                if chunk.get("is_end") is True:
                    break
            else:
                return  # ended without is_end: cut short, the caller reports it
            for index, pending in enumerate(calls):
                yield pending.call(index, "{}")
            if usage is not None:
                yield usage
            if blocked:
                final = "content_filter"
            elif reason is not None:
                final = _FINISH_REASONS.get(reason, reason)
            else:
                final = "length" if truncated and text_seen else "stop"
            if calls and final == "stop":
                final = "tool_calls"  # a call that came with "normal" (or no reason)
            yield base.Finish(final)
            await read_rest(chunks)  # the connection is kept for the next answer

    async def chunks(
        self, lines: AsyncIterator[str], limits: base.ReadLimits
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The JSON objects of an SSE body's ``data:`` lines (and of bare JSON lines, as v1
        sends errors); malformed ones are skipped and counted."""
        decoder = JSONLines(self.display_name)
        async for sse in iter_sse_lines(lines, limits, self.display_name):
            data = sse.data.strip()
            if not data or data == "[DONE]":
                continue
            chunk = decoder.decode(data)
            if chunk is not None:
                yield chunk


def _add_call(
    calls: list[PendingToolCall], call: Mapping[str, Any], budget: base.ToolCallBudget
) -> None:
    """ERNIE sends a function call whole; one that came in pieces (UNCONFIRMED) is joined:
    a piece with a new name starts a call, one without continues the last. Counted in
    ``budget``."""
    name = call.get("name")
    arguments = call.get("arguments")
    if isinstance(name, str) and name and (not calls or calls[-1].name != name):
        budget.call()
        calls.append(PendingToolCall(name=name))
    if calls and isinstance(arguments, str):
        calls[-1].arguments.append(budget.add(arguments))
    elif calls and isinstance(arguments, dict):
        calls[-1].arguments.append(budget.add(json.dumps(arguments, ensure_ascii=False)))


def _usage(usage: Mapping[str, Any]) -> base.Usage | None:
    prompt = int_or_none(usage.get("prompt_tokens"))
    completion = int_or_none(usage.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    return base.Usage(input_tokens=prompt, output_tokens=completion)


async def _one(body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    yield {**body, "is_end": True}


# --------------------------------------------------------------------------- v2


class Qianfan(OpenAIChat):
    """ERNIE and the other Qianfan models on v2 (§8b): OpenAI's format, a bearer key."""

    name = "qianfan"
    display_name = DISPLAY_NAME
    default_base_url = "https://qianfan.baidubce.com/v2"
    key_env = "QIANFAN_API_KEY"  # bce-v3/ALTAK-…/…
    #: Sent as the ``appid`` header when set (§8b); a key alone is enough.
    extra_credentials: ClassVar[Mapping[str, str]] = {"app_id": "QIANFAN_APP_ID"}
    optional_credentials: ClassVar[frozenset[str]] = frozenset({"app_id"})
    supports_tools = True
    supports_images = True  # the ERNIE VL models; the catalog says which models take them
    # §8b lists max_completion_tokens first (max_tokens too); the newer name is sent.
    max_tokens_field = "max_completion_tokens"
    params = (*ALL_SAMPLING, PENALTY_SCORE)
    #: ERNIE says "normal" for a complete answer on v2 too (UNCONFIRMED in §8b; Baidu's v2
    #: reference lists ERNIE's words).
    finish_reasons: ClassVar[Mapping[str, str]] = {
        **OpenAIChat.finish_reasons,
        **_FINISH_REASONS,
    }

    def headers(self, request: ChatRequest) -> dict[str, str]:
        headers = bearer(request.credentials.api_key)
        app_id = request.credentials.extra.get("app_id", "")
        if app_id:
            headers["appid"] = app_id
        return headers

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        key = request.credentials.api_key
        return _recoded(await super().status_error(response, request), key)

    def chunk(self, chunk: dict[str, Any], sse: SSEEvent, key: str) -> dict[str, Any]:
        try:
            return super().chunk(chunk, sse, key)
        except ProviderError as error:
            raise _recoded(error, key) from None


def _recoded(error: ProviderError, key: str) -> ProviderError:
    """``error`` without any trace of the key, and a refusal for unsafe content (v2's
    ``unsafe_request`` type, e.g. ``image_url_unsafe``) as a content filter."""
    message = _BCE_KEY.sub("[redacted]", error.message)
    secret = key.rsplit("/", 1)[-1] if key.startswith("bce-v3/") else ""
    if len(secret) >= 8:
        message = message.replace(secret, "[redacted]")
    kind, permanent = error.kind, error.permanent
    if re.search(r"unsafe", message, re.I):
        kind, permanent = ErrorKind.CONTENT_FILTER, True
    if (message, kind) == (error.message, error.kind):
        return error
    return ProviderError(
        kind, message, permanent=permanent, status=error.status, retry_after=error.retry_after
    )
