"""Alibaba Cloud Model Studio (DashScope) and its Qwen models (PROVIDERS.md §6).

Two ways in, one key: :class:`QwenCompatible` speaks the OpenAI Chat Completions format
(§6a) and :class:`QwenNative` DashScope's own text-generation protocol (§6b). Both pick their
default address from the key's region (Beijing, Singapore, US or the finance cloud), since a
key only works in the region that issued it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar

import httpx

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import REPORTED, by_kind, classify, error_body, json_or_none, redact
from providers.http import (
    HTTPProvider,
    JSONLines,
    bearer,
    deltas,
    int_or_none,
    items,
    obj,
)
from providers.openai_compat import ALL_SAMPLING, OpenAIChat, tool_spec
from providers.sse import SSEEvent, iter_sse

# --------------------------------------------------------------------------- regions

#: Each region's DashScope host; the compatible mode lives under /compatible-mode/v1 and
#: the native API under /api/v1 on the same host. The finance cloud's native path is
#: UNCONFIRMED (only its compatible-mode address is documented in what we read).
REGION_HOSTS = {
    "beijing": "https://dashscope.aliyuncs.com",
    "singapore": "https://dashscope-intl.aliyuncs.com",
    "us": "https://dashscope-us.aliyuncs.com",
    "finance": "https://dashscope-finance.aliyuncs.com",
}
_REGION_ALIASES = {
    "": "beijing",
    "cn": "beijing",
    "china": "beijing",
    "cn-beijing": "beijing",
    "intl": "singapore",
    "international": "singapore",
    "sg": "singapore",
    "ap-southeast-1": "singapore",
    "us-virginia": "us",
    "us-east-1": "us",
    "virginia": "us",
    "cn-finance": "finance",
}
REGION_ENV = "DASHSCOPE_REGION"
#: Credential parts that may be left empty (the region defaults to Beijing). Nothing reads
#: this yet: playground/catalog.py counts every extra credential as required; the lead is
#: asked to skip these there.
OPTIONAL_CREDENTIALS = frozenset({"region"})


def region_base_url(request: ChatRequest, path: str, provider: str) -> str:
    """The base URL: the one given with the request, else the region's host + ``path``."""
    if request.base_url:
        return request.base_url.rstrip("/")
    given = request.credentials.extra.get("region", "")
    word = " ".join(given.split()).lower().replace(" ", "-").replace("_", "-")
    region = _REGION_ALIASES.get(word, word)
    if region not in REGION_HOSTS:
        known = ", ".join(REGION_HOSTS)
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            f"{provider} has no region called {given.strip()!r}; use one of {known} "
            f"(set {REGION_ENV} or the key's region).",
            permanent=True,
        )
    return REGION_HOSTS[region] + path


# --------------------------------------------------------------------------- errors

# DashScope's error codes (its "status codes" page); matched exactly or as a prefix before a
# dot, so "Throttling.RateQuota" falls under "Throttling". The compatible mode reports the
# same errors in OpenAI's shape with snake_case codes.
_CODES = by_kind(
    (
        ErrorKind.AUTH,
        True,
        {
            "InvalidApiKey": "{p} rejected the API key",
            "invalid_api_key": "{p} rejected the API key",
            "Arrearage": "{p} refused the request: the account is in arrears",
            # "Use the free tier only" is on and the free quota is spent; waiting will
            # not help. UNCONFIRMED: the code name is not on the status-code pages we read.
            "AllocationQuota.FreeTierOnly": "{p}'s free quota is used up",
            "AccessDenied": "{p} refused access for this key",
            "access_denied": "{p} refused access for this key",
        },
    ),
    (
        ErrorKind.CONTENT_FILTER,
        True,
        {
            "DataInspectionFailed": "{p} blocked the content",
            "data_inspection_failed": "{p} blocked the content",
        },
    ),
    (
        ErrorKind.RATE_LIMIT,
        False,
        {
            "Throttling": "Rate limited by {p}",
            "limit_requests": "Rate limited by {p}",
            # DashScope pairs insufficient_quota with Throttling.AllocationQuota (a
            # per-minute token quota), unlike OpenAI where it means "out of credit":
            # here it is worth waiting.
            "insufficient_quota": "Rate limited by {p}",
        },
    ),
    (ErrorKind.TIMEOUT, False, {"RequestTimeOut": "{p} timed out"}),
    (
        ErrorKind.UPSTREAM,
        False,
        {
            "InternalError": "{p} had a server error",
            "internal_error": "{p} had a server error",
            "ServiceUnavailable": "{p} is unavailable",
        },
    ),
    (
        ErrorKind.BAD_REQUEST,
        True,
        {
            "ModelNotFound": "{p} does not know this model",
            "model_not_found": "{p} does not know this model",
            "InvalidParameter": "{p} refused the request",
            "invalid_parameter_error": "{p} refused the request",
            "BadRequest": "{p} refused the request",
            "InvalidURL": "{p} refused the request",
            "UnsupportedOperation": "{p} refused the request",
        },
    ),
)


def error_code(body: Any) -> tuple[str, str]:
    """``(code, message)`` from a DashScope error body: native ``{"code", "message"|"msg"}``
    or OpenAI-style ``{"error": {"code"|"type", "message"}}``."""
    if isinstance(body, list) and body:
        body = body[0]
    body = obj(body)
    error = body.get("error")
    source = error if isinstance(error, dict) else body
    code = source.get("code") or source.get("type")
    message = source.get("message") or source.get("msg")
    if isinstance(error, str) and not message:
        message = error
    code_text = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else ""
    return code_text, message if isinstance(message, str) else ""


def coded_error(
    provider: str,
    code: str,
    detail: str,
    *,
    key: str,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """A DashScope error as a sentence, its kind and permanence read from ``code`` when it is
    a known one, else from the HTTP status (or, inside a stream, guessed from the words)."""
    detail = " ".join(redact(detail, key).split())[:300]
    rule = _rule(code)
    if rule is None and status is not None:
        return base.error_for_status(
            provider, status, f"{code}: {detail}" if code else detail, headers
        )
    if rule is None:
        kind, permanent = classify(f"{code} {detail}")
        sentence = f"{provider} reported an error"
    else:
        kind, permanent, words = rule
        sentence = words.format(p=provider)
    where = ", ".join(str(x) for x in (status, code) if x)
    message = f"{sentence} ({where})" if where else sentence
    if detail:
        message += f": {detail}"
    retry_after = base.retry_after_seconds(headers) if headers is not None else None
    return ProviderError(kind, message, permanent=permanent, status=status, retry_after=retry_after)


def _rule(code: str) -> tuple[ErrorKind, bool, str] | None:
    """The rule for ``code``: its own, or that of the code it is a dotted case of."""
    return next(
        (
            rule
            for known, rule in _CODES.items()
            if code.lower() == known.lower() or code.startswith(known + ".")
        ),
        None,
    )


async def dashscope_error(
    provider: str, response: httpx.Response, key: str, limits: base.ReadLimits
) -> ProviderError:
    """A non-2xx answer, of either protocol, as a :class:`ProviderError`."""
    raw = await error_body(response, limits)
    body = json_or_none(raw)
    code, message = error_code(body)
    if body is None:
        message = raw.decode("utf-8", "replace")
    return coded_error(
        provider, code, message, key=key, status=response.status_code, headers=response.headers
    )


# --------------------------------------------------------------------------- parameters

ENABLE_THINKING = base.Param(
    "enable_thinking",
    "Thinking",
    "bool",
    "Let Qwen3 (hybrid thinking) models reason before answering.",
)
THINKING_BUDGET = base.Param(
    "thinking_budget",
    "Thinking budget",
    "int",
    "Most tokens a Qwen3 model may spend thinking; the limit depends on the model. "
    "Setting it turns thinking on.",
    1,
)
ENABLE_SEARCH = base.Param(
    "enable_search",
    "Web search",
    "bool",
    "Let the model search the web before answering (models that support it).",
)
TOP_K = base.Param(
    "top_k",
    "Top K",
    "int",
    "Sample only from the K likeliest tokens (above 100 turns it off).",
    0,
    2**31 - 1,
)
REPETITION_PENALTY = base.Param(
    "repetition_penalty",
    "Repetition penalty",
    "float",
    "Above 1 discourages repeating the same words; 1 means no penalty.",
    0.01,
    10,
)


def thinking_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A thinking budget only works with thinking on: whoever sets one wants it."""
    if params.get("thinking_budget") is not None and params.get("enable_thinking") is None:
        return {"enable_thinking": True}
    return {}


#: What both ways in take besides sampling, top-level in the compatible mode and among the
#: native ``parameters``.
QWEN_SWITCHES = (ENABLE_THINKING, THINKING_BUDGET, ENABLE_SEARCH)


class DashScope(HTTPProvider):
    """What both ways in share: the key, its region, and DashScope's error codes."""

    key_env = "DASHSCOPE_API_KEY"
    extra_credentials: ClassVar[Mapping[str, str]] = {"region": REGION_ENV}
    optional_credentials: ClassVar[frozenset[str]] = OPTIONAL_CREDENTIALS
    supports_images = True
    supports_tools = True
    #: The API's path on the region's host.
    path: ClassVar[str]

    def base_url(self, request: ChatRequest) -> str:
        return region_base_url(request, self.path, self.display_name)

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        return await dashscope_error(
            self.display_name, response, request.credentials.api_key, request.limits
        )


# --------------------------------------------------------------------------- compatible mode


class QwenCompatible(DashScope, OpenAIChat):
    """DashScope's OpenAI-compatible mode (PROVIDERS.md §6a). Qwen-VL models take OpenAI
    image_url parts (UNCONFIRMED from source, §6a); text models refuse them with a 400
    that says so."""

    name = "qwen"
    display_name = "Alibaba Qwen"
    path = "/compatible-mode/v1"
    default_base_url = REGION_HOSTS["beijing"] + path
    # The usage chunk with include_usage follows OpenAI here: UNCONFIRMED (§6a). Usage is
    # read from whichever chunk carries it. No frequency penalty.
    params = (
        *(p for p in ALL_SAMPLING if p is not base.FREQUENCY_PENALTY),
        *QWEN_SWITCHES,
    )
    # Qwen-VL and Qwen-Omni take a video as frames (a "video" part listing them), or one
    # file by web address or as a data URL (video_url); Qwen-Omni takes recordings as
    # input_audio, by web address or as a data URL "data:;base64,…" with the format beside
    # it (Alibaba Model Studio, "Qwen-Omni" and "visual understanding" guides, compatible
    # mode; the data-URL form for video is UNCONFIRMED beyond those examples).
    video_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url", "frames"})
    audio_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url"})

    @staticmethod
    def message(message: base.Message) -> dict[str, Any]:
        wire = OpenAIChat.message(message)
        if isinstance(message.content, str) or isinstance(wire["content"], str):
            return wire
        parts = [
            {
                "type": "input_audio",
                "input_audio": {"data": p.url or f"data:;base64,{p.data}", "format": p.format},
            }
            if isinstance(p, base.AudioPart)
            else part
            for p, part in zip(message.content, wire["content"], strict=True)
        ]
        return {"role": message.role, "content": parts}

    def wire_params(self, request: ChatRequest) -> dict[str, Any]:
        # enable_thinking, thinking_budget and enable_search go top-level, under their names.
        return {**super().wire_params(request), **thinking_params(request.params)}

    def chunk(self, chunk: dict[str, Any], sse: SSEEvent, key: str) -> dict[str, Any]:
        try:
            return super().chunk(chunk, sse, key)
        except ProviderError as error:
            raise self.recoded(error, key) from None

    def recoded(self, error: ProviderError, key: str) -> ProviderError:
        """An error that arrived inside the stream, re-read with DashScope's codes (the
        shared reader only knows OpenAI's words, and would retry a content block). The
        in-stream shape, OpenAI's ``{"error": {"code", "type", "message"}}``, is UNCONFIRMED
        (§6a); anything else keeps the shared reader's reading."""
        match = REPORTED.match(error.message)
        if match is None or _rule(match["code"]) is None:
            return error
        return coded_error(self.display_name, match["code"], match["detail"] or "", key=key)


# --------------------------------------------------------------------------- native protocol

_FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


class _Joined:
    """Turns the text of successive events into deltas.

    With ``incremental_output`` DashScope sends deltas, but without it (or on a server that
    ignores it) each event holds everything so far. An event whose text starts with all the
    text received so far is taken as cumulative and only its new end is kept; once a server
    has shown it sends deltas, the check stops (a delta that happens to repeat the whole
    answer so far, like "ha" after "ha", would otherwise be lost).
    """

    def __init__(self) -> None:
        self.seen = ""
        self.cumulative: bool | None = None

    def delta(self, text: str) -> str:
        if not text:
            return ""
        if self.seen and self.cumulative is not False and text.startswith(self.seen):
            if len(text) > len(self.seen):
                self.cumulative = True
            new, self.seen = text[len(self.seen) :], text
            return new
        if self.seen and self.cumulative is None:
            self.cumulative = False
        self.seen += text
        return text


def _text(content: Any) -> str:
    """Message content: a string (text models) or ``[{"text": …}, …]`` (multimodal ones)."""
    if isinstance(content, str):
        return content
    return "".join(
        str(part["text"])
        for part in items(content)
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def _image(part: base.ImagePart) -> str:
    return part.url or part.data_url  # a web address, or the image inline as a data URL


def native_part(part: base.Part) -> dict[str, Any]:
    """One content item of the native multimodal endpoint: ``{"text"}``, ``{"image"}``,
    ``{"video": [frames]}`` or ``{"video": address}``, ``{"audio": address}`` (the SDK's
    samples and oss_utils.check_and_upload, dashscope-sdk-python; Model Studio's "Qwen-Audio"
    guide, help.aliyun.com/zh/model-studio/audio-language-model). Files go inline as data
    URLs: a recording as ``data:;base64,…`` (no type), as the Qwen-Audio guide writes it; a
    video as ``data:video/mp4;base64,…``, which the SDK passes through untouched but no
    vendor page we read shows for this endpoint: UNCONFIRMED, the API's 400 says if not."""
    if isinstance(part, base.ImagePart):
        return {"image": _image(part)}
    if isinstance(part, base.VideoPart):
        if part.frames:
            return {"video": [_image(f) for f in part.frames]}
        return {"video": part.data_url}
    if isinstance(part, base.AudioPart):
        return {"audio": part.url or f"data:;base64,{part.data}"}
    return {"text": part.text}


class QwenNative(DashScope):
    """DashScope's own protocol: ``{"model", "input", "parameters"}`` in, SSE ``event:result``
    out, no end sentinel (PROVIDERS.md §6b)."""

    name = "qwen_native"
    display_name = "Alibaba DashScope"
    path = "/api/v1"
    default_base_url = REGION_HOSTS["beijing"] + path
    params = (
        base.TEMPERATURE,
        base.TOP_P,
        TOP_K,
        base.MAX_TOKENS,
        base.SEED,
        base.STOP,
        base.PRESENCE_PENALTY,
        REPETITION_PENALTY,
        *QWEN_SWITCHES,
    )

    # Qwen-VL takes a video as frames, a file or an address; Qwen-Audio a recording as a
    # file or an address (native_part).
    video_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url", "frames"})
    audio_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url"})

    @staticmethod
    def multimodal(request: ChatRequest) -> bool:
        return bool(request.images or request.videos or request.audios)

    def url(self, request: ChatRequest) -> str:
        # Vision and audio models have their own endpoint, on the same pattern (§6b).
        task = "multimodal-generation" if self.multimodal(request) else "text-generation"
        return f"{self.base_url(request)}/services/aigc/{task}/generation"

    def headers(self, request: ChatRequest) -> dict[str, str]:
        return {
            **bearer(request.credentials.api_key),
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-DashScope-SSE": "enable",
        }

    def body(self, request: ChatRequest) -> dict[str, Any]:
        multimodal = self.multimodal(request)
        messages: list[dict[str, Any]] = []
        if request.system_prompt:
            system = request.system_prompt
            messages.append(
                {"role": "system", "content": [{"text": system}] if multimodal else system}
            )
        messages.extend(self.message(m, multimodal) for m in request.conversation)
        declared = {p.name for p in self.params}
        parameters: dict[str, Any] = {
            "result_format": "message",
            # Always deltas; thinking models refuse anything else (§6b).
            "incremental_output": True,
            **{k: v for k, v in request.params.items() if k in declared and v is not None},
            **thinking_params(request.params),
        }
        if request.tools:
            parameters["tools"] = [tool_spec(t) for t in request.tools]  # OpenAI's shape
        return {"model": request.model, "input": {"messages": messages}, "parameters": parameters}

    @staticmethod
    def message(message: base.Message, multimodal: bool) -> dict[str, Any]:
        if not multimodal:
            return {"role": message.role, "content": message.text}
        if isinstance(message.content, str):
            return {"role": message.role, "content": [{"text": message.content}]}
        return {"role": message.role, "content": [native_part(p) for p in message.content]}

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        key = request.credentials.api_key
        lines = JSONLines(self.display_name)
        text, reasoning = _Joined(), _Joined()
        tools: dict[int, Any] = {}
        usage: Mapping[str, Any] = {}
        finish: str | None = None
        budget = base.ToolCallBudget(self.display_name, request.limits)
        async for sse in iter_sse(response, request.limits, self.display_name):
            if sse.event == "done" or not sse.data.strip():
                continue
            chunk = lines.decode(sse.data)
            if chunk is None:
                continue
            if sse.event == "error" or self.is_error(chunk):
                code, words = error_code(chunk)
                raise coded_error(self.display_name, code, words, key=key)
            if isinstance(chunk.get("usage"), dict) and chunk["usage"]:
                usage = chunk["usage"]  # repeated on every event; the last is the total
            output = obj(chunk.get("output"))
            choices = items(output.get("choices"))
            if choices:
                choice = obj(choices[0])
                message = obj(choice.get("message"))
                reason = choice.get("finish_reason")
            else:  # result_format "text", should a server ignore "message"
                message = {"content": output.get("text")}
                reason = output.get("finish_reason")
            thought = reasoning.delta(_text(message.get("reasoning_content")))
            for event in deltas(thought, text.delta(_text(message.get("content")))):
                yield event
            for fragment in items(message.get("tool_calls")):
                OpenAIChat.add_tool_fragment(tools, fragment, budget)
            # "null" (a string) while streaming, then the reason.
            if isinstance(reason, str) and reason and reason != "null":
                finish = _FINISH_REASONS.get(reason, reason)
        if finish is None:
            return  # cut short: no Finish, the caller reports it
        calls: list[base.ToolCall] = OpenAIChat.tool_calls(tools)
        for call in calls:
            yield call
        if usage:
            yield _usage(usage)
        yield base.Finish("tool_calls" if calls and finish == "stop" else finish)

    @staticmethod
    def is_error(chunk: Mapping[str, Any]) -> bool:
        """A bare ``{"code", "message"}`` without output, as some gateways send on a 200."""
        return bool(chunk.get("error")) or (
            isinstance(chunk.get("code"), str) and bool(chunk["code"]) and "output" not in chunk
        )


def _usage(usage: Mapping[str, Any]) -> base.Usage:
    def first(*names: str) -> int | None:
        counts = (int_or_none(usage.get(name)) for name in names)
        return next((count for count in counts if count is not None), None)

    details = obj(usage.get("output_tokens_details")) or obj(usage.get("completion_tokens_details"))
    reasoning = details.get("reasoning_tokens")
    # The prompt's audio and video: top-level audio_tokens / video_tokens on the native
    # endpoint (Qwen-Audio guide's example), or under input_tokens_details.
    prompt = obj(usage.get("input_tokens_details")) or obj(usage.get("prompt_tokens_details"))
    # A count of 0 is as good as not said (as OpenAIChat reads it).
    audio = first("audio_tokens") or int_or_none(prompt.get("audio_tokens")) or None
    video = first("video_tokens") or int_or_none(prompt.get("video_tokens")) or None
    total = first("input_tokens", "prompt_tokens")
    media = (audio or 0) + (video or 0)
    if total is not None and media > total:
        # input_tokens leaves them out here. The Qwen-Audio guide's example has
        # audio_tokens 85 beside input_tokens 33, where Qwen-VL's image_tokens are a part of
        # input_tokens (1,247 of 1,271) and a DashScope SDK (cnblogs/dashscope-sdk,
        # MultimodalTokenUsage) calls input_tokens the whole input. UNCONFIRMED which holds
        # for which model: a part larger than the whole is taken as beside it.
        total += media
    return base.Usage(
        input_tokens=total,
        # Includes the thinking, as OpenAI counts it.
        output_tokens=first("output_tokens", "completion_tokens"),
        reasoning_tokens=reasoning if isinstance(reasoning, int) else None,
        audio_input_tokens=audio,
        video_input_tokens=video,
    )
