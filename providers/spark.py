"""iFlytek Spark (讯飞星火), PROVIDERS.md §12: the WebSocket API with its HMAC-SHA256 signed
URL (:class:`Spark`), and the OpenAI-like HTTP endpoint with an API password
(:class:`SparkHTTP`).

httpx cannot speak websockets, so :class:`Spark` uses the ``websockets`` asyncio client and
ignores the HTTP client it is given. Each answer is one connection: one JSON frame out, many
frames back, the last with ``header.status == 2``; then the server closes.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import body_message, classify, http_error, scrub
from providers.http import JSONLines, int_or_none, items, obj, to_send
from providers.openai_compat import OpenAIChat, PendingToolCall
from providers.sse import SSEEvent

DISPLAY_NAME = "iFlytek Spark"

# Spark samples from (0, 1]; a bound of 0 would be refused by the API.
SPARK_TEMPERATURE = dataclasses.replace(
    base.TEMPERATURE,
    minimum=0.01,
    maximum=1,
    description="Randomness of sampling (above 0, up to 1).",
)
TOP_K = dataclasses.replace(base.TOP_K, maximum=6)
# Lite and Pro-128K stop at 4096; the others at 8192. The API refuses more with code 10907.
SPARK_MAX_TOKENS = dataclasses.replace(base.MAX_TOKENS, maximum=8192)


# --------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class SparkModel:
    """What the API calls a model (``domain``) and the websocket path that serves it."""

    domain: str
    path: str


ULTRA = SparkModel("4.0Ultra", "/v4.0/chat")
MAX_32K = SparkModel("max-32k", "/chat/max-32k")
MAX = SparkModel("generalv3.5", "/v3.5/chat")
PRO_128K = SparkModel("pro-128k", "/chat/pro-128k")
PRO = SparkModel("generalv3", "/v3.1/chat")
LITE = SparkModel("lite", "/v1.1/chat")
# X1 (reasoning) over the websocket: domain and path UNCONFIRMED (not in §12a's table).
X1 = SparkModel("x1", "/v1/x1")

# Model ids people write, normalized by _model_key, to the model (PROVIDERS.md §12a table).
# The catalog may hold the API's own domain ("generalv3.5") or the product name ("Spark Max").
MODELS: Mapping[str, SparkModel] = {
    "4.0ultra": ULTRA,
    "ultra": ULTRA,
    "v4.0": ULTRA,
    "max32k": MAX_32K,
    "generalv3.5": MAX,
    "max": MAX,
    "v3.5": MAX,
    "pro128k": PRO_128K,
    "generalv3": PRO,
    "pro": PRO,
    "v3.1": PRO,
    "lite": LITE,
    "general": LITE,  # Lite's domain before it was renamed
    "v1.1": LITE,
    "x1": X1,
}
_MODEL_BY_PATH = {m.path: m for m in (ULTRA, MAX_32K, MAX, PRO_128K, PRO, LITE, X1)}


def _model_key(model: str) -> str:
    key = model.strip().lower()
    key = key.removeprefix("spark")
    return "".join(c for c in key if c not in " -_")


def spark_model(model: str, path: str = "") -> SparkModel | None:
    """The model for a model id, else for a websocket path; ``None`` if neither is known."""
    return MODELS.get(_model_key(model)) or _MODEL_BY_PATH.get(path.rstrip("/"))


# --------------------------------------------------------------------------- errors

# header.code values (iFlytek's published list; which are worth a retry is our judgement).
_CODES: Mapping[int, tuple[ErrorKind, bool]] = {
    10003: (ErrorKind.BAD_REQUEST, True),  # message format
    10004: (ErrorKind.BAD_REQUEST, True),  # message schema
    10005: (ErrorKind.BAD_REQUEST, True),  # parameter value
    10006: (ErrorKind.RATE_LIMIT, False),  # this user is already connected elsewhere
    10007: (ErrorKind.RATE_LIMIT, False),  # still answering this user's previous question
    10013: (ErrorKind.CONTENT_FILTER, True),  # input refused by moderation
    10014: (ErrorKind.CONTENT_FILTER, True),  # output refused by moderation
    10015: (ErrorKind.AUTH, True),  # app id blacklisted
    10016: (ErrorKind.AUTH, True),  # app id not licensed for this (or out of tokens)
    10019: (ErrorKind.CONTENT_FILTER, True),  # conversation tends towards a violation
    10163: (ErrorKind.BAD_REQUEST, True),  # engine refused the request's parameters
    10907: (ErrorKind.BAD_REQUEST, True),  # history and question too long
    11200: (ErrorKind.AUTH, True),  # not licensed, or over the licensed volume
    11201: (ErrorKind.RATE_LIMIT, True),  # daily quota used up: no point retrying today
    11202: (ErrorKind.RATE_LIMIT, False),  # requests-per-second limit
    11203: (ErrorKind.RATE_LIMIT, False),  # concurrency limit
    11210: (ErrorKind.AUTH, True),  # licence problem (UNCONFIRMED meaning)
}

_WORDING = {
    ErrorKind.AUTH: "{p} refused the credentials ({c})",
    ErrorKind.RATE_LIMIT: "Rate limited by {p} ({c})",
    ErrorKind.CONTENT_FILTER: "{p} blocked the content ({c})",
    ErrorKind.BAD_REQUEST: "{p} refused the request ({c})",
}


def code_error(
    provider: str, code: int, message: str, secrets: Sequence[str] = ()
) -> ProviderError:
    """A Spark error code (``header.code`` or the HTTP body's ``code``) as a ProviderError."""
    if code in _CODES:
        kind, permanent = _CODES[code]
    else:
        # Engine trouble (10000-10012, 10110 busy, 10222 network) and codes not listed.
        kind, permanent = classify(message)
        if kind is ErrorKind.UPSTREAM:
            permanent = False
    if code == 11201:
        words = "{p} says the daily quota is used up ({c})"
    else:
        words = _WORDING.get(kind, "{p} reported an error ({c})")
    text = words.format(p=provider, c=code)
    detail = scrub(message, secrets)
    if detail:
        text += f": {detail}"
    return ProviderError(kind, text, permanent=permanent)


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


# --------------------------------------------------------------------------- signing


def signed_url(url: str, api_key: str, api_secret: str, now: float) -> str:
    """``url`` (``wss://host/path``) with the ``authorization``, ``date`` and ``host`` query
    that iFlytek's gateway checks (PROVIDERS.md §12a):

    signature = base64(HMAC-SHA256(api_secret, "host: …\\ndate: …\\nGET /path HTTP/1.1")),
    authorization = base64('api_key="…", algorithm="hmac-sha256",
    headers="host date request-line", signature="…"').
    """
    parts = urlsplit(url)
    host, path = parts.netloc, parts.path or "/"
    date = formatdate(now, usegmt=True)  # RFC 1123, e.g. Fri, 05 May 2023 10:43:39 GMT
    origin = f"host: {host}\ndate: {date}\nGET {path} HTTP/1.1"
    digest = hmac.new(api_secret.encode(), origin.encode(), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
    authorization = (
        f'api_key="{api_key}", algorithm="hmac-sha256", '
        f'headers="host date request-line", signature="{signature}"'
    )
    query = urlencode(
        {
            "authorization": base64.b64encode(authorization.encode()).decode(),
            "date": date,
            "host": host,
        }
    )
    return f"{parts.scheme}://{host}{path}?{query}"


class _Connect(connect):
    """``websockets``' connect without redirects: following one would hand the signed URL
    (and with it the API key, base64-encoded) to another server."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


# --------------------------------------------------------------------------- websocket


class Spark(base.Provider):
    """The WebSocket API: ``wss://spark-api.xf-yun.com/<path>?<signed query>``."""

    name = "spark"
    display_name = DISPLAY_NAME
    # The path is picked per model when the base URL has none (PROVIDERS.md §12a table).
    default_base_url = "wss://spark-api.xf-yun.com"
    key_env = "SPARK_API_KEY"
    extra_credentials = {"app_id": "SPARK_APP_ID", "api_secret": "SPARK_API_SECRET"}
    credential_labels = {"api_key": "APIKey", "app_id": "APPID", "api_secret": "APISecret"}
    params = (SPARK_TEMPERATURE, TOP_K, SPARK_MAX_TOKENS)
    supports_tools = True  # "functions"; Max and 4.0 Ultra honour them

    #: Seconds to open the connection (TCP, TLS, handshake), and to wait for each frame
    #: (``None``: the request's ``limits``, first byte then stall).
    connect_timeout: float = 10.0
    frame_timeout: float | None = None
    #: Seconds to wait for the server's side of the closing handshake.
    close_timeout: float = 2.0

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        connect_timeout: float | None = None,
        frame_timeout: float | None = None,
    ) -> None:
        self.clock = clock
        if connect_timeout is not None:
            self.connect_timeout = connect_timeout
        if frame_timeout is not None:
            self.frame_timeout = frame_timeout

    def check_credentials(self, request: ChatRequest) -> None:
        creds = request.credentials
        missing = [
            env
            for present, env in (
                (creds.extra.get("app_id"), "SPARK_APP_ID"),
                (creds.api_key, self.key_env),
                (creds.extra.get("api_secret"), "SPARK_API_SECRET"),
            )
            if not present
        ]
        if missing:
            raise ProviderError(
                ErrorKind.AUTH,
                f"{self.display_name} needs an app ID, API key and API secret: "
                f"set {', '.join(missing)}.",
                permanent=True,
            )

    def endpoint(self, request: ChatRequest) -> tuple[str, SparkModel]:
        """The unsigned websocket URL and the model (its ``domain``) for ``request``."""
        base_url = self.base_url(request)
        parts = urlsplit(base_url)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        if scheme not in ("ws", "wss") or not parts.netloc:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"The {self.display_name} base URL must be a wss:// address, "
                "like wss://spark-api.xf-yun.com/v3.5/chat.",
                permanent=True,
            )
        path = parts.path.rstrip("/")
        model = spark_model(request.model, path)
        if not path:
            if model is None:
                raise ProviderError(
                    ErrorKind.BAD_REQUEST,
                    f"{self.display_name} has no known address for model {request.model!r}: "
                    "give the model's full websocket URL as the base URL "
                    "(like wss://spark-api.xf-yun.com/v3.5/chat).",
                    permanent=True,
                )
            path = model.path
        if model is None:
            # An unknown id on an explicit address: send the id as the domain, as written.
            model = SparkModel(request.model, path)
        return f"{scheme}://{parts.netloc}{path}", model

    def frame(self, request: ChatRequest, domain: str) -> dict[str, Any]:
        """The one JSON frame the client sends."""
        if any(
            isinstance(part, base.ImagePart)
            for m in request.messages
            if not isinstance(m.content, str)
            for part in m.content
        ):
            # The chat models read text only (image understanding is another API).
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{self.display_name} cannot take images; remove them from the turn.",
                permanent=True,
            )
        chat = {"domain": domain, **to_send(request.params, "temperature", "max_tokens", "top_k")}
        texts: list[dict[str, str]] = []
        if request.system_prompt:
            texts.append({"role": "system", "content": request.system_prompt})
        texts.extend({"role": m.role, "content": m.text} for m in request.conversation)
        payload: dict[str, Any] = {"message": {"text": texts}}
        if request.tools:
            payload["functions"] = {"text": [function(t) for t in request.tools]}
        return {
            "header": {"app_id": request.credentials.extra.get("app_id", "")},
            "parameter": {"chat": chat},
            "payload": payload,
        }

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[base.Event]:
        creds = request.credentials
        secrets = (creds.api_key, creds.extra.get("api_secret", ""))
        url, model = self.endpoint(request)
        frame = json.dumps(self.frame(request, model.domain), ensure_ascii=False)
        signed = signed_url(url, creds.api_key, creds.extra.get("api_secret", ""), self.clock())
        # The handshake is part of the wait for the first byte that the answer's tries
        # share: it may take what is left of it (at most connect_timeout), and the first
        # frame may then wait what the handshake left.
        loop = asyncio.get_running_loop()
        opening, wait = loop.time(), request.first_byte_wait
        ws = await self.connect(signed, secrets, request.limits, request=request)
        request = dataclasses.replace(request, first_byte_left=wait - (loop.time() - opening))
        try:
            await ws.send(frame)
            frames = self.read_frames(ws, secrets, request.limits, request=request)
            async with aclosing(frames) as events:
                async for event in events:
                    yield event
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                # A frame longer than limits.line_bytes: websockets closed the connection.
                raise base.too_long_line(self.display_name, request.limits) from None
            return  # cut before the last frame: no Finish, the caller reports it
        finally:
            # Also when our caller stops early: the socket goes now, not when collected.
            await ws.close()

    async def connect(
        self,
        url: str,
        secrets: Sequence[str],
        limits: base.ReadLimits,
        *,
        request: ChatRequest | None = None,
    ) -> ClientConnection:
        """Open the websocket; handshake refusals become ProviderErrors. Never puts the URL
        (it carries the signature and, encoded, the key) into a message. A frame longer than
        ``limits.line_bytes`` closes the connection (websockets checks as it reads). With
        ``request``, the handshake waits no longer than its try's first-byte wait."""
        name = self.display_name
        open_timeout = self.connect_timeout
        if request is not None:
            open_timeout = min(open_timeout, request.first_byte_wait)
        try:
            return await _Connect(
                url,
                open_timeout=open_timeout,
                close_timeout=self.close_timeout,
                user_agent_header="llm-playground",
                # Never through a proxy named in the environment (HTTPS_PROXY…): the
                # connection goes where the base URL says, as every other call does.
                proxy=None,
                max_size=limits.line_bytes,
            )
        except InvalidStatus as exc:
            response = exc.response
            detail = scrub(body_message(bytes(response.body or b"")), secrets)
            error = base.error_for_status(
                name, response.status_code, detail, dict(response.headers)
            )
            raise error from None
        except InvalidURI:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"The {name} base URL is not a valid address.",
                permanent=True,
            ) from None
        except TimeoutError:
            if open_timeout < self.connect_timeout and request is not None:
                raise base.no_first_byte(name, limits, shared=request.first_byte_shared) from None
            raise ProviderError(
                ErrorKind.TIMEOUT, f"{name} did not answer in time", permanent=False
            ) from None
        except (OSError, InvalidHandshake) as exc:
            raise ProviderError(
                ErrorKind.NETWORK, f"Could not reach {name} ({type(exc).__name__})", permanent=False
            ) from None

    async def read_frames(
        self,
        ws: ClientConnection,
        secrets: Sequence[str],
        limits: base.ReadLimits,
        *,
        request: ChatRequest | None = None,
    ) -> AsyncGenerator[base.Event, None]:
        """The events of the answer's frames; the first awaited for what ``request``'s try
        may still wait (:attr:`ChatRequest.first_byte_wait`), the others for
        ``limits.stall_seconds`` each."""
        first_wait = limits.first_byte_seconds if request is None else request.first_byte_wait
        shared = request is not None and request.first_byte_shared
        lines = JSONLines(self.display_name)
        calls: list[PendingToolCall] = []
        budget = base.ToolCallBudget(self.display_name, limits)
        usage: base.Usage | None = None
        reason: str | None = None
        started = False
        while True:
            wait = self.frame_timeout
            if wait is None:
                wait = limits.stall_seconds if started else first_wait
            try:
                async with asyncio.timeout(wait):
                    message = await ws.recv()
            except TimeoutError:
                if self.frame_timeout is None:
                    if started:
                        raise base.stalled(self.display_name, limits) from None
                    raise base.no_first_byte(self.display_name, limits, shared=shared) from None
                what = "stopped answering mid-stream" if started else "did not answer in time"
                raise ProviderError(
                    ErrorKind.TIMEOUT, f"{self.display_name} {what}", permanent=False
                ) from None
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
            data = lines.decode(text)
            if data is None:
                continue
            header = obj(data.get("header"))
            code = _code(header.get("code"))
            if code:
                raise code_error(self.display_name, code, str(header.get("message") or ""), secrets)
            payload = obj(data.get("payload"))
            choices = obj(payload.get("choices"))
            for item in items(choices.get("text")):
                if not isinstance(item, dict):
                    continue
                # reasoning_content: Spark X1 (UNCONFIRMED over the websocket).
                reasoning = item.get("reasoning_content")
                if isinstance(reasoning, str) and reasoning:
                    started = True
                    yield base.ReasoningDelta(reasoning)
                content = item.get("content")
                if isinstance(content, str) and content:
                    started = True
                    yield base.TextDelta(content)
                if isinstance(item.get("function_call"), dict):
                    _add_function_call(calls, item["function_call"], budget)
                if isinstance(item.get("finish_reason"), str) and item["finish_reason"]:
                    # Not in the documented frames (status 2 is the only end signal); kept
                    # in case newer versions send one.
                    reason = item["finish_reason"]
            counts = obj(obj(payload.get("usage")).get("text"))
            if counts:
                usage = base.Usage(
                    input_tokens=int_or_none(counts.get("prompt_tokens")),
                    output_tokens=int_or_none(counts.get("completion_tokens")),
                )
            if int_or_none(header.get("status")) == 2 or int_or_none(choices.get("status")) == 2:
                break
        for index, pending in enumerate(calls):
            yield pending.call(index)
        if usage is not None:
            yield usage
        if reason is None:
            reason = "tool_calls" if calls else "stop"
        yield base.Finish(_FINISH_REASONS.get(reason, reason))


def function(tool: base.ToolSpec) -> dict[str, Any]:
    """A tool in Spark's ``functions.text`` shape (and OpenAI's ``function`` object)."""
    return {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}


def _add_function_call(
    calls: list[PendingToolCall], call: Mapping[str, Any], budget: base.ToolCallBudget
) -> None:
    """Spark sends a call whole in the last frame; should it come in pieces over several
    frames (UNCONFIRMED), the name starts a call and argument text is appended. Counted in
    ``budget``."""
    name = call.get("name")
    if isinstance(name, str) and name and (not calls or calls[-1].name != name):
        budget.call()
        calls.append(PendingToolCall(name=name))
    if not calls:
        budget.call()
        calls.append(PendingToolCall())
    arguments = call.get("arguments")
    if isinstance(arguments, str):
        calls[-1].arguments.append(budget.add(arguments))
    elif isinstance(arguments, dict):
        calls[-1].arguments[:] = [budget.add(json.dumps(arguments, ensure_ascii=False))]


_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# --------------------------------------------------------------------------- HTTP


class SparkHTTP(OpenAIChat):
    """The OpenAI-like endpoint, ``POST …/v1/chat/completions`` with ``Authorization: Bearer
    <APIPassword>`` (PROVIDERS.md §12b). The "APIKey:APISecret" form some iFlytek docs show
    works the same way: put that pair in SPARK_API_PASSWORD.

    Quirks handled here: chunks (and whole 200 bodies) carrying a non-zero ``code`` with
    ``message`` instead of an ``error`` object; ``tool_calls`` as an object rather than an
    array (UNCONFIRMED, accepted both ways); usage on whichever chunk carries it; ``[DONE]``
    or a plain end after the last chunk (UNCONFIRMED which, both accepted).
    """

    name = "spark_http"
    display_name = "iFlytek Spark (HTTP)"
    default_base_url = "https://spark-api-open.xf-yun.com/v1"
    key_env = "SPARK_API_PASSWORD"
    params = (
        SPARK_TEMPERATURE,
        TOP_K,
        SPARK_MAX_TOKENS,
        base.PRESENCE_PENALTY,
        base.FREQUENCY_PENALTY,
    )
    supports_tools = True  # Max and 4.0 Ultra
    # Not documented for Spark; an unknown field risks a schema refusal (10163).
    send_stream_options = False

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body = super().body(request)
        model = MODELS.get(_model_key(request.model))
        if model is not None:
            body["model"] = model.domain  # "Spark Max" -> "generalv3.5"
        if request.tools:
            body["tools"] = [{"type": "function", "function": function(t)} for t in request.tools]
        return body

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        key = request.credentials.api_key
        error, body = await http_error(self.display_name, response, key, request.limits)
        code = _code(obj(body).get("code"))
        if code:
            coded = code_error(self.display_name, code, str(obj(body).get("message") or ""), [key])
            return ProviderError(
                coded.kind,
                coded.message,
                permanent=coded.permanent,
                status=error.status,
                retry_after=error.retry_after,
            )
        if error.status == 401:
            message = error.message.replace("the API key", "the API password", 1)
            return ProviderError(ErrorKind.AUTH, message, permanent=True, status=401)
        return error

    def chunk(self, chunk: dict[str, Any], sse: SSEEvent, key: str) -> dict[str, Any]:
        chunk = super().chunk(chunk, sse, key)
        code = _code(chunk.get("code"))
        if code:
            raise code_error(self.display_name, code, str(chunk.get("message") or ""), [key])
        for choice in items(chunk.get("choices")):
            delta = obj(choice.get("delta")) if isinstance(choice, dict) else {}
            if isinstance(delta.get("tool_calls"), dict):
                delta["tool_calls"] = [delta["tool_calls"]]  # one call as an object, not a list
        return chunk

    def finish(self, reason: str | None, tools: bool) -> base.Finish:
        # Spark may end a tool call with "stop" or with no reason at all (UNCONFIRMED):
        # "stop" counts as no reason, which tool calls make "tool_calls".
        return super().finish(None if reason == "stop" else reason, tools)
