"""Google's Gemini API, v1beta (PROVIDERS.md §3): SSE ``data:`` chunks, each a whole
``GenerateContentResponse``, and no end sentinel."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import http_error, stream_error
from providers.http import HTTPProvider, JSONLines, drop_empty, int_or_none, items, obj
from providers.sse import iter_sse

TOP_K = dataclasses.replace(base.TOP_K, maximum=500)
THINKING_BUDGET = base.Param(
    "thinking_budget",
    "Thinking budget",
    "int",
    "Tokens the model may spend thinking: -1 lets it decide, 0 turns thinking off where "
    "the model allows it.",
    -1,
    32768,
)
INCLUDE_THOUGHTS = base.Param(
    "include_thoughts",
    "Show thoughts",
    "bool",
    "Stream summaries of the model's thoughts (on by default when a budget is set).",
)

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


# Keywords of the OpenAPI subset that functionDeclarations[].parameters takes (PROVIDERS.md
# §3 names the field; the subset is the SDK's Schema type). A schema using anything else
# (additionalProperties, $ref, …) goes as parametersJsonSchema, which takes JSON Schema as
# is: UNCONFIRMED beyond the SDK's FunctionDeclaration docs, so used only when needed.
_SCHEMA_WORDS = frozenset(
    {
        *("type", "format", "title", "description", "nullable", "enum", "default", "example"),
        *("properties", "required", "minProperties", "maxProperties", "propertyOrdering"),
        *("items", "minItems", "maxItems", "minLength", "maxLength", "pattern"),
        *("minimum", "maximum", "anyOf"),
    }
)


def _openapi_subset(schema: Any) -> bool:
    """Whether ``schema``, and every schema inside it, uses only :data:`_SCHEMA_WORDS`."""
    if not isinstance(schema, dict) or not set(schema) <= _SCHEMA_WORDS:
        return False
    properties = schema.get("properties", {})
    any_of = schema.get("anyOf", [])
    if not isinstance(properties, dict) or not isinstance(any_of, list):
        return False
    inner = [*properties.values(), *any_of, *([schema["items"]] if "items" in schema else [])]
    return all(_openapi_subset(s) for s in inner)


def tool_spec(tool: base.ToolSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    schema = dict(tool.parameters)
    spec["parameters" if _openapi_subset(schema) else "parametersJsonSchema"] = schema
    return spec


def is_uploaded_file(url: str, base_url: str) -> bool:
    """Whether ``url`` names a file uploaded through Gemini's Files API
    (``{base_url}/files/…``), the only web address the API reads an image from."""
    return bool(base_url) and url.startswith(f"{base_url}/files/")


#: The pages of public YouTube videos, which Gemini reads a video from by address.
_YOUTUBE = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"})


def is_youtube(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and (parts.hostname or "") in _YOUTUBE


def _refused(sentence: str) -> ProviderError:
    # Said before the call; the address is left out of the sentence (a signed URL carries a
    # token).
    return ProviderError(ErrorKind.BAD_REQUEST, f"Google Gemini {sentence}", permanent=True)


def media_part(item: base.VideoPart | base.AudioPart, base_url: str) -> dict[str, Any]:
    """A video or a recording as Gemini takes it (Google AI for Developers: "Video
    understanding", "Audio understanding" and "File input methods", ai.google.dev/gemini-api/
    docs): a file inline as ``inlineData`` with its MIME type; by address, ``fileData`` with
    a Files API URI, or for a video a public YouTube page. The external web addresses Gemini
    has fetched since January 2026 are documents and images only (the same guide's list of
    content types), so any other address is refused before the call. ``fileData.mimeType``
    is optional (the FileData reference) and left out: a Files API file knows its own type,
    and the type of what an address names is not known here."""
    if item.form == "file":
        return {"inlineData": {"mimeType": item.mime_type, "data": item.data}}
    if is_uploaded_file(item.url, base_url) or (
        isinstance(item, base.VideoPart) and is_youtube(item.url)
    ):
        return {"fileData": {"fileUri": item.url}}
    if isinstance(item, base.VideoPart):
        raise _refused(
            "reads a video by web address only from YouTube or its own Files API; attach "
            "the video as a file."
        )
    raise _refused(
        "reads a recording by web address only from its own Files API; attach the "
        "recording as a file."
    )


def part(item: Any, base_url: str = "") -> dict[str, Any]:
    if isinstance(item, base.VideoPart | base.AudioPart):
        return media_part(item, base_url)
    if not isinstance(item, base.ImagePart):
        return {"text": item.text}
    if item.url.startswith("data:") and ";base64," in item.url:
        mime, _, data = item.url[5:].partition(";base64,")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if item.url:
        if not is_uploaded_file(item.url, base_url):
            # Gemini does not fetch arbitrary https images: PROVIDERS.md §3 lists fileData
            # without saying it does, and Files API URIs are what it is for.
            raise _refused("cannot fetch an image from a web address; attach the image as a file.")
        return {"fileData": {"mimeType": item.mime_type, "fileUri": item.url}}
    return {"inlineData": {"mimeType": item.mime_type, "data": item.data}}


class Gemini(HTTPProvider):
    name = "gemini"
    display_name = "Google Gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    key_env = "GEMINI_API_KEY"
    supports_images = True
    #: Images only inline or as Files API URIs, never by an arbitrary web address.
    image_urls: ClassVar[bool] = False
    supports_tools = True
    # Videos and recordings inline or by address (media_part); a video of frames goes as
    # its images. Recordings in the formats "Audio understanding" lists (WAV, MP3, AIFF,
    # AAC, Ogg Vorbis, FLAC): M4A is not among them. The MIME types go as the upload was
    # recognised (audio/mpeg, video/quicktime), as the SDK's own guesses send them; the
    # guide's list writes audio/mp3 and video/mov: UNCONFIRMED that both spellings are taken.
    video_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url"})
    audio_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url"})
    audio_types: ClassVar[frozenset[str] | None] = frozenset(
        {"audio/wav", "audio/mpeg", "audio/ogg", "audio/flac"}
    )
    params = (
        base.TEMPERATURE,
        base.TOP_P,
        TOP_K,
        base.MAX_TOKENS,
        base.STOP,
        base.SEED,
        THINKING_BUDGET,
        INCLUDE_THOUGHTS,
    )

    def url(self, request: ChatRequest) -> str:
        model = request.model.removeprefix("models/")
        return (
            f"{self.base_url(request)}/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"
        )

    def headers(self, request: ChatRequest) -> dict[str, str]:
        return {"x-goog-api-key": request.credentials.api_key}

    def body(self, request: ChatRequest) -> dict[str, Any]:
        params = request.params
        budget = params.get("thinking_budget")
        thinking: dict[str, Any] = {}
        if budget is not None:
            thinking["thinkingBudget"] = budget
        include = params.get("include_thoughts")
        if include is None and budget:
            include = True  # thoughts only stream when asked for; a budget means wanting them
        if include is not None:
            thinking["includeThoughts"] = include
        # candidateCount is never sent: one answer per pane, read from candidates[0].
        config = drop_empty(
            {
                "temperature": params.get("temperature"),
                "topP": params.get("top_p"),
                "topK": params.get("top_k"),
                "maxOutputTokens": params.get("max_tokens"),
                "stopSequences": list(params.get("stop") or ()),
                "seed": params.get("seed"),
                "thinkingConfig": thinking,
            }
        )
        system = request.system_prompt
        base_url = self.base_url(request)
        tools = [tool_spec(t) for t in request.tools]
        return drop_empty(
            {
                "contents": [self.content(m, base_url) for m in request.conversation],
                "systemInstruction": {"parts": [{"text": system}]} if system else None,
                "tools": [{"functionDeclarations": tools}] if tools else None,
                "generationConfig": config,
            }
        )

    @staticmethod
    def content(message: base.Message, base_url: str = "") -> dict[str, Any]:
        role = "model" if message.role == "assistant" else "user"
        if isinstance(message.content, str):
            return {"role": role, "parts": [{"text": message.content}]}
        return {"role": role, "parts": [part(p, base_url) for p in message.content]}

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        error, body = await http_error(
            self.display_name, response, request.credentials.api_key, request.limits
        )
        details = _error_object(body).get("details")
        reasons = {d.get("reason") for d in details if isinstance(d, dict)} if details else set()
        if response.status_code == 400 and "API_KEY_INVALID" in reasons:
            # Gemini answers a bad key with 400 INVALID_ARGUMENT; the ErrorInfo reason tells.
            # Not in PROVIDERS.md: UNCONFIRMED, seen in the wild.
            message = error.message.replace("refused the request", "rejected the API key", 1)
            return ProviderError(ErrorKind.AUTH, message, permanent=True, status=400)
        if error.retry_after is None and isinstance(details, list):
            # UNCONFIRMED (PROVIDERS.md §3): the wait is a google.rpc.RetryInfo entry in
            # error.details with retryDelay like "17s", rather than a Retry-After header.
            for detail in details:
                delay = detail.get("retryDelay") if isinstance(detail, dict) else None
                match = _SECONDS.match(delay) if isinstance(delay, str) else None
                if match:
                    error.retry_after = float(match.group(1))
                    break
        return error

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        lines = JSONLines(self.display_name)
        usage: Mapping[str, Any] = {}
        finish: str | None = None
        called_tools = 0
        async for sse in iter_sse(response, request.limits, self.display_name):
            if not sse.data.strip():
                continue
            chunk = lines.decode(sse.data)
            if chunk is None:
                continue
            if chunk.get("error"):
                raise stream_error(self.display_name, chunk, request.credentials.api_key)
            if isinstance(chunk.get("usageMetadata"), dict):
                # UNCONFIRMED whether intermediate chunks carry usage: keep the last seen.
                usage = chunk["usageMetadata"]
            candidates = items(chunk.get("candidates"))
            if not candidates:
                block = obj(chunk.get("promptFeedback")).get("blockReason")
                if block:
                    raise ProviderError(
                        ErrorKind.CONTENT_FILTER,
                        f"{self.display_name} blocked the prompt ({block})",
                        permanent=True,
                    )
                continue
            candidate = obj(candidates[0])
            for item in items(obj(candidate.get("content")).get("parts")):
                if not isinstance(item, dict):
                    continue
                text = item.get("text")
                if isinstance(text, str) and text:
                    yield base.ReasoningDelta(text) if item.get("thought") else base.TextDelta(text)
                call = item.get("functionCall")
                if isinstance(call, dict):
                    called_tools += 1
                    yield base.ToolCall(
                        str(call.get("id") or f"call_{called_tools}"),
                        str(call.get("name", "")),
                        json.dumps(call.get("args") or {}),
                    )
            reason = candidate.get("finishReason")
            if isinstance(reason, str) and reason:
                finish = _FINISH_REASONS.get(reason, reason.lower())
        if finish is None:
            return  # cut short: no Finish, the caller reports it
        if finish == "stop" and called_tools:
            # Gemini says STOP after a function call; say it the way the others do.
            finish = "tool_calls"
        if usage:
            yield _usage(usage)
        yield base.Finish(finish)


def _usage(meta: Mapping[str, Any]) -> base.Usage:
    answer = int_or_none(meta.get("candidatesTokenCount"))
    thoughts = int_or_none(meta.get("thoughtsTokenCount"))
    # candidatesTokenCount leaves the thoughts out; report output the OpenAI way, with them.
    output = None if answer is None and thoughts is None else (answer or 0) + (thoughts or 0)
    # promptTokensDetails: the prompt's count by modality, [{modality, tokenCount}] (the
    # SDK's ModalityTokenCount); a video's sound track is counted as AUDIO.
    by_modality: dict[str, int] = {}
    for detail in items(meta.get("promptTokensDetails")):
        modality = obj(detail).get("modality")
        count = int_or_none(obj(detail).get("tokenCount"))
        if isinstance(modality, str) and count is not None:
            by_modality[modality] = by_modality.get(modality, 0) + count
    return base.Usage(
        input_tokens=int_or_none(meta.get("promptTokenCount")),
        output_tokens=output,
        reasoning_tokens=thoughts,
        audio_input_tokens=by_modality.get("AUDIO") or None,
        video_input_tokens=by_modality.get("VIDEO") or None,
    )


def _error_object(body: Any) -> dict[str, Any]:
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
