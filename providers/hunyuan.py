"""Tencent Hunyuan (腾讯混元), PROVIDERS.md §11.

- :class:`Hunyuan`, the native TencentCloud API 3.0 (§11a): ``POST
  https://hunyuan.tencentcloudapi.com/`` with ``X-TC-Action: ChatCompletions``,
  ``X-TC-Version: 2023-09-01`` and a TC3-HMAC-SHA256 signature made from the SecretId and
  SecretKey; PascalCase JSON both ways; SSE ``data:`` chunks ending with the chunk whose
  ``FinishReason`` is set. Errors come as ``{"Response": {"Error": {"Code", "Message"}}}``
  on HTTP 200, and mid-stream as ``ErrorMsg: {"Code", "Msg"}``.
- :class:`HunyuanCompatible`, the OpenAI-compatible endpoint (§11b) with a Hunyuan API key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
from providers.http import (
    PLAIN,
    HTTPProvider,
    JSONLines,
    deltas,
    int_or_none,
    items,
    lines_of,
    obj,
    to_send,
)
from providers.openai_compat import OpenAIChat, PendingToolCall
from providers.sse import iter_sse_lines, read_rest

DISPLAY_NAME = "Tencent Hunyuan"

SERVICE = "hunyuan"
HOST = "hunyuan.tencentcloudapi.com"
ACTION = "ChatCompletions"
VERSION = "2023-09-01"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json"
SIGNED_HEADERS = "content-type;host"

# Seed is "a positive whole number up to 10000" on both APIs.
HUNYUAN_SEED = dataclasses.replace(base.SEED, minimum=1, maximum=10000)
# Hunyuan stops *after* a stop word (OpenAI stops before it): said here, so no one is
# surprised to see it in the answer.
HUNYUAN_STOP = dataclasses.replace(
    base.STOP, description="Stop after one of these appears (Hunyuan keeps the stop word)."
)
ENABLE_ENHANCEMENT = base.Param(
    "enable_enhancement",
    "Enhancement (search)",
    "bool",
    "Let Hunyuan search the web and use other enhancements (off by default; no effect on "
    "hunyuan-lite).",
)

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "sensitive": "content_filter",  # output moderation stopped the answer
}


# --------------------------------------------------------------------------- signing


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    payload: bytes,
    timestamp: int,
    host: str = HOST,
    path: str = "/",
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The ``Authorization`` header of a TencentCloud API 3.0 POST (§11a, as the official
    SDK builds it): canonical request, string to sign, key derived from the SecretKey."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_request = "\n".join(
        (
            "POST",
            path,
            "",  # no query string
            f"content-type:{content_type}\nhost:{host}\n",
            SIGNED_HEADERS,
            hashlib.sha256(payload).hexdigest(),
        )
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        )
    )
    key = _hmac(f"TC3{secret_key}".encode(), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )


# --------------------------------------------------------------------------- errors

# TencentCloud error codes (the common API 3.0 list and hunyuan's errorcodes.py). A code
# not listed takes the rule of the longest listed code it is a dotted case of.
_CODE_RULES = by_kind(
    (
        ErrorKind.AUTH,
        True,
        {
            "AuthFailure.SignatureExpire": (
                "{p} refused the signature as expired (is this machine's clock right?)"
            ),
            "AuthFailure": "{p} rejected the SecretId or SecretKey",
            "UnauthorizedOperation": "{p} refused access for these credentials",
            "OperationDenied": "{p} refused the operation",
            **dict.fromkeys(
                (
                    "FailedOperation.FreeResourcePackExhausted",
                    "FailedOperation.ResourcePackExhausted",
                    "FailedOperation.ServiceNotActivated",
                    "FailedOperation.ServiceStop",
                    "FailedOperation.ServiceStopArrears",
                    "FailedOperation.UserUnAuthError",
                    "FailedOperation.PartnerAccountUnSupport",
                    "ResourceInsufficient",
                    "ResourceUnavailable",
                ),
                "{p} refused the account: billing or service problem",
            ),
        },
    ),
    (
        ErrorKind.CONTENT_FILTER,
        True,
        {
            "OperationDenied.TextIllegalDetected": "{p} blocked the text",
            "OperationDenied.ImageIllegalDetected": "{p} blocked the image",
        },
    ),
    (
        ErrorKind.RATE_LIMIT,
        False,
        dict.fromkeys(
            (
                "RequestLimitExceeded",
                "LimitExceeded",
                "FailedOperation.EngineServerLimitExceeded",
            ),
            "Rate limited by {p}",
        ),
    ),
    (ErrorKind.TIMEOUT, False, {"FailedOperation.EngineRequestTimeout": "{p} timed out"}),
    (
        ErrorKind.UPSTREAM,
        False,
        {
            "FailedOperation.EngineServerError": "{p} had a server error",
            "InternalError": "{p} had an internal error",
            "ServiceUnavailable": "{p} is unavailable",
            "FailedOperation": "{p} could not answer",
        },
    ),
    (
        ErrorKind.BAD_REQUEST,
        True,
        {
            "InvalidParameterValue.Model": "{p} does not know this model",
            **dict.fromkeys(
                (
                    "InvalidParameter",
                    "InvalidParameterValue",
                    "MissingParameter",
                    "UnknownParameter",
                    "InvalidAction",
                    "InvalidRequest",
                    "RequestSizeLimitExceeded",
                    "UnsupportedOperation",
                    "UnsupportedRegion",
                    "UnsupportedProtocol",
                    "NoSuchProduct",
                    "NoSuchVersion",
                    "ResourceNotFound",
                ),
                "{p} refused the request",
            ),
        },
    ),
)


def _rule(code: str) -> tuple[ErrorKind, bool, str] | None:
    """The rule for ``code``, else for the longest listed code it is a dotted case of."""
    while code:
        if code in _CODE_RULES:
            return _CODE_RULES[code]
        code = code.rpartition(".")[0]
    return None


_SECRET_ID = re.compile(r"\bAKID[0-9A-Za-z]{8,}")


def tencent_error(
    code: str,
    message: str,
    secrets: Sequence[str] = (),
    *,
    provider: str = DISPLAY_NAME,
    status: int | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """A TencentCloud error code (or a mid-stream ``ErrorMsg`` code) as a ProviderError."""
    rule = _rule(code)
    if rule is not None:
        kind, permanent, words = rule
    else:
        kind, permanent = classify(f"{code} {message}")
        words = "{p} reported an error"
    text = reported(words.format(p=provider), code, scrub(message, secrets, _SECRET_ID))
    return ProviderError(kind, text, permanent=permanent, status=status, retry_after=retry_after)


def response_error(body: Any) -> tuple[str, str] | None:
    """``(code, message)`` of ``{"Response": {"Error": {"Code", "Message"}}}`` (also
    accepted unwrapped), or of a mid-stream ``{"ErrorMsg": {"Code", "Msg"}}``."""
    if not isinstance(body, dict):
        return None
    error = obj(obj(body.get("Response")).get("Error")) or obj(body.get("Error"))
    if error.get("Code") or error.get("Message"):
        return str(error.get("Code") or ""), str(error.get("Message") or "")
    error = obj(body.get("ErrorMsg"))
    code = error.get("Code")
    if error.get("Msg") or code not in (None, 0, "", "0"):
        return str(code if code is not None else ""), str(error.get("Msg") or "")
    return None


# --------------------------------------------------------------------------- native


def _content(part: base.Part) -> dict[str, Any]:
    """One of the native Contents: text, image_url, or video_url for a video by address
    (Content.VideoUrl {Url, Fps}: "如\"https://your-video-path.mp4\"", at most 100 MB; the
    hunyuan v20230901 models of tencentcloud-sdk-ruby). Frames would be video_frames, but
    its Frames are addresses only ("图像帧传url"), so a video of frames goes as images."""
    if isinstance(part, base.ImagePart):
        return {"Type": "image_url", "ImageUrl": {"Url": part.data_url}}
    if isinstance(part, base.VideoPart):
        return {"Type": "video_url", "VideoUrl": {"Url": part.url}}
    return {"Type": "text", "Text": part.text}


class Hunyuan(HTTPProvider):
    """The native API 3.0 ``ChatCompletions`` action, signed with TC3-HMAC-SHA256."""

    name = "hunyuan"
    display_name = DISPLAY_NAME
    default_base_url = f"https://{HOST}"
    key_env = "TENCENTCLOUD_SECRET_ID"
    extra_credentials: ClassVar[Mapping[str, str]] = {
        "secret_key": "TENCENTCLOUD_SECRET_KEY",
        "region": "TENCENTCLOUD_REGION",  # X-TC-Region, e.g. ap-guangzhou; may be left out
    }
    optional_credentials: ClassVar[frozenset[str]] = frozenset({"region"})
    credential_labels: ClassVar[Mapping[str, str]] = {
        "api_key": "SecretId",
        "secret_key": "SecretKey",
    }
    supports_tools = True  # hunyuan-turbo(s) and hunyuan-functioncall
    supports_images = True  # the vision models (Contents with ImageUrl)
    video_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"url"})  # _content
    # No max-tokens field in the API (§11a). Bounds from the API reference.
    params = (base.TEMPERATURE, base.TOP_P, HUNYUAN_SEED, HUNYUAN_STOP, ENABLE_ENHANCEMENT)

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def check_credentials(self, request: ChatRequest) -> None:
        creds = request.credentials
        self.require(
            "a SecretId and a SecretKey",
            (
                (creds.api_key, self.key_env),
                (creds.extra.get("secret_key"), self.extra_credentials["secret_key"]),
            ),
        )

    # ----------------------------------------------------------------- request

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system_prompt:
            messages.append({"Role": "system", "Content": request.system_prompt})
        messages.extend(self.message(m) for m in request.conversation)
        body: dict[str, Any] = {"Model": request.model, "Messages": messages, "Stream": True}
        params = request.params
        body.update(
            to_send(
                params,
                temperature="Temperature",
                top_p="TopP",
                seed="Seed",
                enable_enhancement="EnableEnhancement",
            )
        )
        if params.get("stop"):
            body["Stop"] = list(params["stop"])
        if request.tools:
            body["Tools"] = [tool_spec(t) for t in request.tools]
        return body

    @staticmethod
    def message(message: base.Message) -> dict[str, Any]:
        role = message.role.lower()
        content = message.content
        if isinstance(content, str) or all(isinstance(p, base.TextPart) for p in content):
            return {"Role": role, "Content": message.text}
        # Whether ImageUrl.Url also takes a data: URL (not only http[s]) is UNCONFIRMED.
        return {"Role": role, "Contents": [_content(p) for p in content]}

    def signed(self, request: ChatRequest, payload: bytes) -> tuple[str, dict[str, str]]:
        """The URL and the headers (signature included) for ``payload``."""
        url = self.base_url(request) + "/"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"The {self.display_name} base URL must be an https:// address, like "
                f"https://{HOST}.",
                permanent=True,
            )
        timestamp = int(self.clock())
        creds = request.credentials
        headers = {
            "Authorization": tc3_authorization(
                creds.api_key,
                creds.extra.get("secret_key", ""),
                payload=payload,
                timestamp=timestamp,
                host=parts.netloc,
                path=parts.path or "/",
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": parts.netloc,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
        }
        region = creds.extra.get("region", "").strip()
        if region:
            headers["X-TC-Region"] = region
        return url, headers

    # ----------------------------------------------------------------- stream

    def send(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AbstractAsyncContextManager[httpx.Response]:
        # The exact bytes are signed, so the body is serialized here, once.
        payload = json.dumps(self.body(request), ensure_ascii=False, separators=(",", ":"))
        data = payload.encode("utf-8")
        url, headers = self.signed(request, data)
        return client.stream("POST", url, content=data, headers={**headers, **PLAIN})

    @staticmethod
    def secrets(response: httpx.Response, request: ChatRequest) -> tuple[str, ...]:
        """What to keep out of messages: the SecretId, the SecretKey and the signature the
        request carried."""
        signature = response.request.headers.get("Authorization", "").rpartition("Signature=")[2]
        creds = request.credentials
        return (creds.api_key, creds.extra.get("secret_key", ""), signature)

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        secrets = self.secrets(response, request)
        raw = await error_body(response, request.limits)
        fields = response_error(json_or_none(raw))
        if fields is None:
            return status_sentence(self.display_name, response, raw, secrets, _SECRET_ID)
        return tencent_error(
            *fields,
            secrets,
            provider=self.display_name,
            status=response.status_code,
            retry_after=base.retry_after_seconds(response.headers),
        )

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        """Translate the chunks; the last one has ``FinishReason`` set, but :class:`Finish`
        waits for the stream's end (a usage-only chunk or ``[DONE]`` might still follow:
        UNCONFIRMED that none does)."""
        secrets = self.secrets(response, request)
        if "event-stream" in response.headers.get("content-type", "").lower():
            lines: AsyncIterator[str] = reading.lines(response, request.limits, self.display_name)
        else:
            # An error (the usual case: HTTP 200 with Response.Error) as one JSON body,
            # read whole so a pretty-printed one parses too.
            raw = await reading.read_whole(response, request.limits, self.display_name)
            fields = response_error(json_or_none(raw))
            if fields is not None:
                raise tencent_error(*fields, secrets, provider=self.display_name)
            lines = lines_of(raw)
        decoder = JSONLines(self.display_name)
        tools: dict[int | str, PendingToolCall] = {}
        budget = base.ToolCallBudget(self.display_name, request.limits)
        usage: base.Usage | None = None
        finish: str | None = None
        events = iter_sse_lines(lines, request.limits, self.display_name)
        async for sse in events:
            data = sse.data.strip()
            if not data:
                continue
            if data == "[DONE]":
                break
            chunk = decoder.decode(data)
            if chunk is None:
                continue
            fields = response_error(chunk)
            chunk = obj(chunk.get("Response")) or chunk  # accept the API 3.0 wrapper too
            if fields is not None:
                raise tencent_error(*fields, secrets, provider=self.display_name)
            if isinstance(chunk.get("Usage"), dict):
                usage = _usage(chunk["Usage"]) or usage  # cumulative: the last one counts
            for choice in items(chunk.get("Choices")):
                if not isinstance(choice, dict) or choice.get("Index", 0) != 0:
                    continue
                delta = obj(choice.get("Delta") or choice.get("Message"))
                for event in deltas(delta.get("ReasoningContent"), delta.get("Content")):
                    yield event
                for fragment in items(delta.get("ToolCalls")):
                    _add_fragment(tools, fragment, budget)
                reason = choice.get("FinishReason")
                if isinstance(reason, str) and reason:
                    finish = reason
        if finish is None:
            return  # cut short (or nothing readable came): the caller reports it
        calls = [pending.call(index, "{}") for index, pending in enumerate(tools.values())]
        for call in calls:
            yield call
        if usage is not None:
            yield usage
        yield base.Finish(_FINISH_REASONS.get(finish, finish))
        await read_rest(events)  # the connection is kept for the next answer


def tool_spec(tool: base.ToolSpec) -> dict[str, Any]:
    """A tool in the native shape; ``Parameters`` is the JSON Schema *as a string*."""
    function: dict[str, Any] = {"Name": tool.name}
    if tool.description:
        function["Description"] = tool.description
    function["Parameters"] = json.dumps(dict(tool.parameters), ensure_ascii=False)
    return {"Type": "function", "Function": function}


def _add_fragment(
    tools: dict[int | str, PendingToolCall], fragment: Any, budget: base.ToolCallBudget
) -> None:
    """Join a call that comes in pieces (UNCONFIRMED whether it does): by ``Index`` when
    given, else by ``Id``; a piece with neither continues the last call."""
    if not isinstance(fragment, dict):
        return
    index = fragment.get("Index")
    call_id = fragment.get("Id")
    key: int | str
    if isinstance(index, int) and not isinstance(index, bool):
        key = index
    elif isinstance(call_id, str) and call_id:
        key = call_id
    elif tools:
        key = list(tools)[-1]
    else:
        key = 0
    if key not in tools:
        budget.call()
    pending = tools.setdefault(key, PendingToolCall())
    if isinstance(call_id, str) and call_id:
        pending.id = call_id
    function = obj(fragment.get("Function"))
    if isinstance(function.get("Name"), str) and function["Name"]:
        pending.name = function["Name"]
    if isinstance(function.get("Arguments"), str):
        pending.arguments.append(budget.add(function["Arguments"]))


def _usage(usage: Mapping[str, Any]) -> base.Usage | None:
    prompt = int_or_none(usage.get("PromptTokens"))
    completion = int_or_none(usage.get("CompletionTokens"))
    if prompt is None and completion is None:
        return None
    # Reasoning tokens: the field name is UNCONFIRMED; read if present, else unknown.
    details = obj(usage.get("CompletionTokensDetails"))
    reasoning = int_or_none(details.get("ReasoningTokens"))
    return base.Usage(input_tokens=prompt, output_tokens=completion, reasoning_tokens=reasoning)


# --------------------------------------------------------------------------- compatible


class HunyuanCompatible(OpenAIChat):
    """Hunyuan's OpenAI-compatible endpoint (§11b) with an API key from the console."""

    name = "hunyuan_compatible"
    display_name = DISPLAY_NAME
    default_base_url = "https://api.hunyuan.cloud.tencent.com/v1"
    key_env = "HUNYUAN_API_KEY"
    supports_tools = True
    supports_images = True  # the vision models, as image_url parts
    # From the compatible API's parameter table: temperature [0, 2], top_p [0, 1],
    # max_tokens, seed 1-10000, stop; enable_enhancement as a top-level extra. No
    # presence or frequency penalty. Usage comes in the last chunk with include_usage.
    params = (
        base.TEMPERATURE,
        base.TOP_P,
        base.MAX_TOKENS,
        HUNYUAN_SEED,
        HUNYUAN_STOP,
        ENABLE_ENHANCEMENT,
    )
    #: "sensitive": output moderation stopped the answer.
    finish_reasons: ClassVar[Mapping[str, str]] = {
        **OpenAIChat.finish_reasons,
        **_FINISH_REASONS,
    }
