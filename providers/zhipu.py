"""Zhipu GLM on open.bigmodel.cn (PROVIDERS.md §7): the OpenAI Chat Completions format, a
JWT signed from the key, and numeric error codes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import REPORTED, by_kind, http_error, redact
from providers.http import obj
from providers.openai_compat import OpenAIChat
from providers.sse import SSEEvent

TOKEN_TTL = 210.0  # seconds, as Zhipu's SDK

DO_SAMPLE = base.Param(
    "do_sample",
    "Sampling",
    "bool",
    "Off: always take the likeliest token (temperature and top P are then ignored).",
)
THINKING = base.Param(
    "thinking",
    "Thinking",
    "bool",
    "Let GLM-4.5 and later reason before answering (on by default for those models).",
)

# Zhipu's error codes (docs.bigmodel.cn, "API 错误码"): kind, whether retrying can help, and
# the sentence. Codes not listed fall back to the HTTP status.
_CODES = by_kind(
    (
        ErrorKind.AUTH,
        True,
        {
            **dict.fromkeys(("1000", "1001", "1002", "1003", "1004"), "{p} rejected the API key"),
            **dict.fromkeys(("1110", "1111", "1112", "1121"), "{p} refused the account"),
            "1113": "{p} refused the request: the account is in arrears",
            "1220": "{p} refused access for this key",
            "1309": "{p} refused the request: the plan has expired",
            "1311": "{p} refused access: the plan does not include this model",
        },
    ),
    (
        ErrorKind.BAD_REQUEST,
        True,
        {
            **dict.fromkeys(
                ("1200", "1210", "1212", "1213", "1214", "1215", "1221", "1222"),
                "{p} refused the request",
            ),
            "1211": "{p} does not know this model",
            "1261": "{p} says the prompt is too long",
        },
    ),
    (
        ErrorKind.UPSTREAM,
        False,
        {
            "500": "{p} had a server error",
            "1120": "{p} could not reach the account",
            "1230": "{p} had a server error",
            "1231": "{p} is still busy with an earlier request",
            "1234": "{p} had a network error",
            "1312": "{p} is overloaded for this model",
        },
    ),
    (
        ErrorKind.CONTENT_FILTER,
        True,
        {"1300": "{p} blocked the request by policy", "1301": "{p} blocked the content as unsafe"},
    ),
    (
        ErrorKind.RATE_LIMIT,
        False,
        {
            "1302": "Rate limited by {p} for running too many at once",
            "1303": "Rate limited by {p} for calling too often",
            "1305": "Rate limited by {p}",
        },
    ),
    (
        ErrorKind.RATE_LIMIT,
        True,
        {
            "1304": "{p}'s daily call limit is reached",
            "1308": "{p}'s usage limit is reached",
            "1310": "{p}'s weekly or monthly limit is reached",
            "1313": "{p} limited the account under its fair-use policy",
        },
    ),
)

_JWT = re.compile(r"\beyJ[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_token(api_key: str, now: float, ttl: float = TOKEN_TTL) -> str:
    """The short-lived HS256 token Zhipu accepts for an ``id.secret`` key: claims
    ``api_key``, ``exp`` and ``timestamp``, both times in milliseconds (§7)."""
    key_id, _, secret = api_key.partition(".")
    now_ms = int(round(now * 1000))
    header = {"alg": "HS256", "sign_type": "SIGN"}
    claims = {"api_key": key_id, "exp": now_ms + int(ttl * 1000), "timestamp": now_ms}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def scrub(text: str, key: str) -> str:
    """``text`` without the key, its secret half, or anything shaped like a JWT."""
    text = redact(text, key)
    secret = key.partition(".")[2]
    if len(secret) >= 8:
        text = text.replace(secret, "[redacted]")
    return _JWT.sub("[redacted]", text)


def _image_url(part: base.ImagePart) -> str:
    # Zhipu's own examples send inline images as bare base64, without the data: prefix;
    # whether it also takes a data URL is UNCONFIRMED, so it never gets one.
    if part.url.startswith("data:") and ";base64," in part.url:
        return part.url.partition(";base64,")[2]
    return part.url or part.data


class Zhipu(OpenAIChat):
    name = "zhipu"
    display_name = "Zhipu GLM"
    default_base_url = "https://open.bigmodel.cn/api/paas/v4"
    key_env = "ZHIPUAI_API_KEY"
    supports_images = True  # the glm-4v family
    supports_tools = True
    # GLM-4V-Plus reads a video by address only: video_url.url is "视频 url 地址", where
    # image_url.url says "图片 url 或者 base64 编码"; MP4, under 20 MB and 30 s (GLM-4V-Plus)
    # or 200 MB (GLM-4V-Plus-0111); first in the message and never beside images (Zhipu's
    # API reference, "GLM-4V 系列", open.bigmodel.cn, read in a copy a public repository
    # keeps). A video of frames goes as images, at most 5 of them (the same page).
    video_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"url"})
    # Bounds from Zhipu's API reference (§7 gives none): temperature [0, 1], top_p
    # [0.01, 1], a single stop word.
    params = (
        dataclasses.replace(base.TEMPERATURE, maximum=1),
        dataclasses.replace(base.TOP_P, minimum=0.01),
        base.MAX_TOKENS,
        base.SEED,
        dataclasses.replace(base.STOP, maximum=1),
        DO_SAMPLE,
        THINKING,
    )
    #: "sensitive": the answer was cut by Zhipu's safety check.
    finish_reasons: ClassVar[Mapping[str, str]] = {
        **OpenAIChat.finish_reasons,
        "sensitive": "content_filter",
    }

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def headers(self, request: ChatRequest) -> dict[str, str]:
        key = request.credentials.api_key
        key_id, _, secret = key.partition(".")
        # An "id.secret" key becomes a fresh signed token; anything else goes as it is.
        token = jwt_token(key, self.clock()) if key_id and secret else key
        return {"Authorization": f"Bearer {token}"}

    def wire_params(self, request: ChatRequest) -> dict[str, Any]:
        wire = super().wire_params(request)
        if isinstance(wire.get("thinking"), bool):
            wire["thinking"] = {"type": "enabled" if wire["thinking"] else "disabled"}
        return wire

    @staticmethod
    def message(message: base.Message) -> dict[str, Any]:
        wire = OpenAIChat.message(message)
        if isinstance(message.content, str) or isinstance(wire["content"], str):
            return wire
        videos = [p for p in message.content if isinstance(p, base.VideoPart)]
        if videos and any(isinstance(p, base.ImagePart) for p in message.content):
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                "Zhipu GLM cannot take a video and images in one message; send the images "
                "in a turn of their own.",
                permanent=True,
            )
        # The video first: "video_url 参数必须在第一个" (GLM-4V API reference).
        parts = [{"type": "video_url", "video_url": {"url": p.url}} for p in videos]
        parts += [
            {"type": "image_url", "image_url": {"url": _image_url(p)}}
            if isinstance(p, base.ImagePart)
            else {"type": "text", "text": p.text}
            for p in message.content
            if not isinstance(p, base.VideoPart)
        ]
        return {"role": message.role, "content": parts}

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        key = request.credentials.api_key
        error, body = await http_error(self.display_name, response, key, request.limits)
        # {"error": {"code": "1261", "message": …}}; a bare {"code", "msg"} just in case.
        fault = obj(obj(body).get("error")) or obj(body)
        detail = fault.get("message") or fault.get("msg")
        code = str(fault.get("code", ""))
        rule = _CODES.get(code)
        if rule is None:
            return _scrubbed(error, key)
        kind, permanent, words = rule
        message = f"{words.format(p=self.display_name)} ({response.status_code}, {code})"
        if isinstance(detail, str) and detail.strip():
            message += f": {' '.join(scrub(detail, key).split())[:300]}"
        return ProviderError(
            kind,
            message,
            permanent=permanent,
            status=response.status_code,
            retry_after=base.retry_after_seconds(response.headers),
        )

    def chunk(self, chunk: dict[str, Any], sse: SSEEvent, key: str) -> dict[str, Any]:
        try:
            return super().chunk(chunk, sse, key)
        except ProviderError as error:
            raise self.recoded(error, key) from None

    def finish(self, reason: str | None, tools: bool) -> base.Finish:
        if reason == "network_error":
            # Inference broke off on Zhipu's side; the answer is incomplete.
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"{self.display_name} broke off the answer (network_error)",
                permanent=False,
            )
        return super().finish(reason, tools)

    def recoded(self, error: ProviderError, key: str) -> ProviderError:
        """An ``{"error": {"code", "message"}}`` that came inside the stream, read with
        Zhipu's codes (the shared reader would count a content block as worth a retry)."""
        match = REPORTED.match(error.message)
        rule = _CODES.get(match["code"]) if match else None
        if match is None or rule is None:
            return _scrubbed(error, key)
        kind, permanent, words = rule
        message = f"{words.format(p=self.display_name)} ({match['code']})"
        if match["detail"]:
            message += f": {scrub(match['detail'], key)}"
        return ProviderError(kind, message, permanent=permanent)


def _scrubbed(error: ProviderError, key: str) -> ProviderError:
    message = scrub(error.message, key)
    if message == error.message:
        return error
    return ProviderError(
        error.kind,
        message,
        permanent=error.permanent,
        status=error.status,
        retry_after=error.retry_after,
    )
