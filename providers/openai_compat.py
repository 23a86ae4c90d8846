"""The OpenAI Chat Completions wire format, and the vendors that speak it.

One base class, :class:`OpenAIChat`; each vendor is a subclass that sets its name, base URL,
key variable, parameters and the few switches where the dialects differ (PROVIDERS.md §1, §4,
§5, §6a, §14b).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import error_details, http_error, stream_error
from providers.http import (
    HTTPProvider,
    JSONLines,
    bearer,
    deltas,
    drop_empty,
    int_or_none,
    items,
    obj,
)
from providers.sse import SSEEvent, iter_sse, read_rest

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the deprecated single-function form
    "content_filter": "content_filter",
}

ALL_SAMPLING = (
    base.TEMPERATURE,
    base.TOP_P,
    base.MAX_TOKENS,
    base.SEED,
    base.STOP,
    base.PRESENCE_PENALTY,
    base.FREQUENCY_PENALTY,
)


@dataclass
class PendingToolCall:
    """A tool call whose pieces are still arriving."""

    id: str = ""
    name: str = ""
    arguments: list[str] = dataclasses.field(default_factory=list)

    def call(self, index: int, no_arguments: str = "") -> base.ToolCall:
        """The finished call: ``call_{index}`` when it came without an id, and
        ``no_arguments`` when it came without arguments."""
        arguments = "".join(self.arguments) or no_arguments
        return base.ToolCall(self.id or f"call_{index}", self.name, arguments)


def chat_messages(
    request: ChatRequest, message: Callable[[base.Message], dict[str, Any]]
) -> list[dict[str, Any]]:
    """The system prompt as the first message, then each turn as ``message`` writes it."""
    messages: list[dict[str, Any]] = []
    if request.system_prompt:
        messages.append({"role": "system", "content": request.system_prompt})
    messages.extend(message(m) for m in request.conversation)
    return messages


def tool_spec(tool: base.ToolSpec) -> dict[str, Any]:
    """A tool in the Chat Completions shape (``strict`` left out: xAI strips it anyway)."""
    function = drop_empty({"name": tool.name, "description": tool.description})
    function["parameters"] = dict(tool.parameters)
    return {"type": "function", "function": function}


def openai_part(part: base.Part) -> dict[str, Any]:
    """One part of a user message in OpenAI's chat format and the shapes compatible servers
    add to it. Audio: ``input_audio`` with the base64 bytes (no ``data:`` prefix) and their
    format, as OpenAI's API reference gives it (ChatCompletionContentPartInputAudio: data,
    format "wav" | "mp3"). Video: ``video_url`` with a web address or a data URL, as vLLM
    and DashScope's compatible mode take it; frames as one ``video`` part listing them
    (Qwen-VL's shape, PROVIDERS.md §6a and the issue's research)."""
    if isinstance(part, base.ImagePart):
        return {"type": "image_url", "image_url": {"url": part.data_url}}
    if isinstance(part, base.VideoPart):
        if part.frames:
            return {"type": "video", "video": [f.data_url for f in part.frames]}
        return {"type": "video_url", "video_url": {"url": part.data_url}}
    if isinstance(part, base.AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    return {"type": "text", "text": part.text}


class OpenAIChat(HTTPProvider):
    """``POST {base}/chat/completions`` with ``stream: true``, read as SSE ``data:`` chunks.

    Dialects differ per chunk (:meth:`chunk`), in their finish words (:attr:`finish_reasons`,
    :meth:`finish`) and in which credential the request carried (:meth:`secret`).
    """

    params: ClassVar[tuple[base.Param, ...]] = ALL_SAMPLING
    #: The body field the shared ``max_tokens`` parameter is sent as.
    max_tokens_field: ClassVar[str] = "max_tokens"
    #: Ask for the usage chunk (``stream_options.include_usage``).
    send_stream_options: ClassVar[bool] = True
    #: Whether an image may be given by web address; if not, only inline (base64) images.
    image_urls: ClassVar[bool] = True
    #: The API's finish_reason words in ours; any other word is passed on as it is.
    finish_reasons: ClassVar[Mapping[str, str]] = _FINISH_REASONS

    @classmethod
    def check_params(cls, model: str, params: Mapping[str, Any]) -> None:
        """Raise :class:`ParamError` for cleaned ``params`` that ``model`` is known to
        refuse, so the person hears it before a call, in our words. Unknown models pass."""

    def refuse_unsupported(self, request: ChatRequest) -> None:
        """Refuse, before any call, what this server cannot take: a permanent error."""
        images = request.images
        problem = ""
        if request.tools and not self.supports_tools:
            problem = "cannot call tools; remove them from the turn"
        elif images and not self.supports_images:
            problem = "cannot take images; remove them from the turn"
        elif not self.image_urls and any(p.url and not p.url.startswith("data:") for p in images):
            problem = "cannot fetch an image from a web address; attach the image as a file"
        if problem:
            raise ProviderError(
                ErrorKind.BAD_REQUEST, f"{self.display_name} {problem}.", permanent=True
            )
        try:
            self.check_params(request.model, request.params)
        except base.ParamError as error:
            raise self.not_called(error) from None

    def url(self, request: ChatRequest) -> str:
        base_url = self.base_url(request)
        if not base_url:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"No base URL configured for {self.display_name}.",
                permanent=True,
            )
        return f"{base_url}/chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        self.refuse_unsupported(request)
        messages = chat_messages(request, self.message)
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if self.send_stream_options:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            body["tools"] = [tool_spec(t) for t in request.tools]
        body.update(self.wire_params(request))
        return body

    def wire_params(self, request: ChatRequest) -> dict[str, Any]:
        """The declared parameters under this API's names."""
        declared = {p.name for p in self.params}
        return {
            self.max_tokens_field if name == "max_tokens" else name: value
            for name, value in request.params.items()
            if name in declared and value is not None
        }

    @staticmethod
    def message(message: base.Message) -> dict[str, Any]:
        content = message.content
        if isinstance(content, str) or all(isinstance(p, base.TextPart) for p in content):
            # Text only: a plain string, which every compatible server accepts.
            return {"role": message.role, "content": message.text}
        return {"role": message.role, "content": [openai_part(p) for p in content]}

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        error, _ = await self.error_and_body(response, request)
        return error

    async def error_and_body(
        self, response: httpx.Response, request: ChatRequest
    ) -> tuple[ProviderError, Any]:
        """A non-2xx answer's error and its body (decoded JSON, else ``None``), read once
        and within the request's limits, for a dialect that reads more from the body."""
        error, body = await http_error(
            self.display_name, response, request.credentials.api_key, request.limits
        )
        if response.status_code == 429 and "insufficient_quota" in error_details(body):
            # OpenAI's "out of credit" also comes as 429; waiting will not fix it.
            error = ProviderError(
                ErrorKind.AUTH,
                error.message.replace("Rate limited by", "Out of credit at", 1),
                permanent=True,
                status=429,
            )
        return error, body

    def secret(self, response: httpx.Response, request: ChatRequest) -> str:
        """The credential the request carried, to keep out of every message: the API key."""
        return request.credentials.api_key

    def chunk(self, chunk: dict[str, Any], sse: SSEEvent, key: str) -> dict[str, Any]:
        """One decoded chunk, checked before it is read: raise the error it carries (here
        an ``error`` object or event), and return it in OpenAI's shape (a dialect rewrites
        its own fields)."""
        if chunk.get("error") or sse.event == "error":
            raise stream_error(self.display_name, chunk, key)
        return chunk

    def finish(self, reason: str | None, tools: bool) -> base.Finish:
        """The last event, from the last ``finish_reason`` (``None`` if none came before
        ``[DONE]``) and whether tool calls came."""
        if reason is None:
            # xAI may send "" instead of "tool_calls" (PROVIDERS.md §4, per LiteLLM);
            # otherwise the server says it is done.
            reason = "tool_calls" if tools else "stop"
        return base.Finish(self.finish_reasons.get(reason, reason))

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        """Translate the chunks; :class:`Finish` is held back until the stream ends, because
        the usage chunk comes after the chunk with ``finish_reason``."""
        key = self.secret(response, request)
        lines = JSONLines(self.display_name)
        tools: dict[int, PendingToolCall] = {}
        budget = base.ToolCallBudget(self.display_name, request.limits)
        finish: str | None = None
        usage: base.Usage | None = None
        done = saw_tools = False
        events = iter_sse(response, request.limits, self.display_name)
        async for sse in events:
            data = sse.data.strip()
            if not data:
                continue
            if data == "[DONE]":
                done = True
                break
            decoded = lines.decode(data)
            if decoded is None:
                continue
            chunk = self.chunk(decoded, sse, key)
            if isinstance(chunk.get("usage"), dict):
                # Keep the last one: some servers repeat a running total on every chunk.
                usage = self.usage(chunk["usage"])
            for choice in items(chunk.get("choices")):
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = obj(choice.get("delta"))
                # DeepSeek, xAI and Qwen say reasoning_content; Ollama says reasoning.
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                for event in deltas(reasoning, delta.get("content")):
                    yield event
                for fragment in items(delta.get("tool_calls")):
                    saw_tools = True
                    self.add_tool_fragment(tools, fragment, budget)
                reason = choice.get("finish_reason")
                if isinstance(reason, str) and reason and reason != "null":
                    finish = reason
                    for call in self.tool_calls(tools):
                        yield call
        if finish is None and not (done and lines.good):
            # Cut short (or nothing readable came): no Finish, so the caller reports it.
            return
        for call in self.tool_calls(tools):
            yield call
        if usage is not None:
            yield usage
        yield self.finish(finish, saw_tools)
        await read_rest(events)  # the connection is kept for the next answer

    @staticmethod
    def add_tool_fragment(
        tools: dict[int, PendingToolCall], fragment: Any, budget: base.ToolCallBudget
    ) -> None:
        """Add a piece of a tool call to ``tools``, counted in ``budget``."""
        if not isinstance(fragment, dict):
            return
        index = fragment.get("index")
        if not isinstance(index, int):
            # Some servers leave out the index: a fragment with an id starts a new call,
            # one without continues the last.
            last = max(tools, default=-1)
            index = last + 1 if fragment.get("id") or last < 0 else last
        if index not in tools:
            budget.call()
        pending = tools.setdefault(index, PendingToolCall())
        if fragment.get("id"):
            pending.id = str(fragment["id"])
        function = obj(fragment.get("function"))
        if function.get("name"):
            pending.name = str(function["name"])
        if isinstance(function.get("arguments"), str):
            pending.arguments.append(budget.add(function["arguments"]))

    @staticmethod
    def tool_calls(tools: dict[int, PendingToolCall]) -> list[base.ToolCall]:
        """The accumulated calls in index order; empties ``tools``."""
        calls = [pending.call(index) for index, pending in sorted(tools.items())]
        tools.clear()
        return calls

    @staticmethod
    def usage(usage: Mapping[str, Any]) -> base.Usage:
        prompt = int_or_none(usage.get("prompt_tokens"))
        completion = int_or_none(usage.get("completion_tokens"))
        details = usage.get("completion_tokens_details")
        reasoning = int_or_none(obj(details).get("reasoning_tokens"))
        total = int_or_none(usage.get("total_tokens"))
        if (
            reasoning
            and None not in (prompt, completion, total)
            and total == (prompt or 0) + (completion or 0) + reasoning
        ):
            # xAI counts reasoning outside completion_tokens (PROVIDERS.md §4); the others,
            # like OpenAI, inside. Report output tokens the OpenAI way: reasoning included.
            completion = (completion or 0) + reasoning
        # The prompt's audio and video, where the server says (OpenAI's audio models, and
        # Qwen-Omni's prompt_tokens_details: audio_tokens, video_tokens).
        prompt_details = obj(usage.get("prompt_tokens_details"))
        return base.Usage(
            input_tokens=prompt,
            output_tokens=completion,
            reasoning_tokens=reasoning,
            # 0 (OpenAI reports audio_tokens: 0 for text) is as good as not said.
            audio_input_tokens=int_or_none(prompt_details.get("audio_tokens")) or None,
            video_input_tokens=int_or_none(prompt_details.get("video_tokens")) or None,
        )


REASONING_EFFORT = base.Param(
    "reasoning_effort",
    "Reasoning effort",
    "choice",
    "How long a reasoning model thinks before answering.",
    choices=("minimal", "low", "medium", "high"),
)

# OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 but not gpt-5-chat) take no sampling
# settings; they answer 400 "Unsupported value: 'temperature' … Only the default (1) value
# is supported" (not in PROVIDERS.md §1: per LiteLLM's gpt-5 and o-series configs). Newer
# names (gpt-5.1, …) are not matched: unknown models are sent what the person set.
_OPENAI_REASONING = re.compile(r"^(?:ft:)?(?:o[134](?![\d.])|gpt-5(?![\d.]))(?!.*-chat)")
_OPENAI_O_SERIES = re.compile(r"^(?:ft:)?o[134](?![\d.])")
# Chat models known to take no reasoning effort.
_OPENAI_NOT_REASONING = re.compile(r"^(?:ft:)?(?:gpt-4|gpt-3\.5|chatgpt-)|-chat")


class OpenAI(OpenAIChat):
    name = "openai"
    display_name = "OpenAI"
    default_base_url = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"
    #: Credential parts (PROVIDERS.md §1) sent as OpenAI-Organization and OpenAI-Project
    #: when present; a key alone is enough, so both are optional.
    extra_credentials: ClassVar[Mapping[str, str]] = {
        "organization": "OPENAI_ORG_ID",
        "project": "OPENAI_PROJECT_ID",
    }
    optional_credentials: ClassVar[frozenset[str]] = frozenset({"organization", "project"})
    supports_images = True
    supports_tools = True
    # The audio models (gpt-4o-audio-preview …) take a recording inline, WAV or MP3 only;
    # no chat model takes a video (frames go as images).
    audio_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file"})
    audio_types: ClassVar[frozenset[str] | None] = frozenset({"audio/wav", "audio/mpeg"})
    # max_tokens is deprecated and refused by reasoning models (PROVIDERS.md §1), and
    # max_completion_tokens is what every OpenAI chat model takes now.
    max_tokens_field = "max_completion_tokens"
    params = (*ALL_SAMPLING, REASONING_EFFORT)

    def headers(self, request: ChatRequest) -> dict[str, str]:
        headers = bearer(request.credentials.api_key)
        extra = request.credentials.extra
        for part, header in (
            ("organization", "OpenAI-Organization"),
            ("project", "OpenAI-Project"),
        ):
            if extra.get(part):
                headers[header] = extra[part]
        return headers

    @classmethod
    def check_params(cls, model: str, params: Mapping[str, Any]) -> None:
        effort = params.get("reasoning_effort")
        if _OPENAI_REASONING.match(model):
            refused = [
                label
                for name, label in (("temperature", "Temperature"), ("top_p", "Top P"))
                if params.get(name) is not None
                and not (name == "temperature" and params[name] == 1)
            ]
            if refused:
                raise base.ParamError(
                    f"{model} is a reasoning model and takes no {' or '.join(refused)}; "
                    f"clear {'it' if len(refused) == 1 else 'them'} and send again."
                )
            if effort == "minimal" and _OPENAI_O_SERIES.match(model):
                raise base.ParamError(
                    f"{model} takes Reasoning effort low, medium or high, not minimal."
                )
        elif effort is not None and _OPENAI_NOT_REASONING.search(model):
            raise base.ParamError(f"{model} is not a reasoning model; clear Reasoning effort.")

    def wire_params(self, request: ChatRequest) -> dict[str, Any]:
        sent = super().wire_params(request)
        if _OPENAI_REASONING.match(request.model):
            sent.pop("temperature", None)  # 1, the only value they take, is their default
        return sent


class DeepSeek(OpenAIChat):
    name = "deepseek"
    display_name = "DeepSeek"
    default_base_url = "https://api.deepseek.com"
    key_env = "DEEPSEEK_API_KEY"
    supports_tools = True  # type "function" only (PROVIDERS.md §5), which is all we send
    # image_url parts reach only DeepSeek's vision models (§5); the catalog says which.
    supports_images = True
    # No seed: DeepSeek's support for it is UNCONFIRMED (PROVIDERS.md §5).
    params = (
        base.TEMPERATURE,
        base.TOP_P,
        base.MAX_TOKENS,
        base.STOP,
        base.PRESENCE_PENALTY,
        base.FREQUENCY_PENALTY,
        base.Param(
            "thinking",
            "Thinking",
            "bool",
            "Think before answering (thinking mode; deepseek-reasoner always thinks).",
        ),
    )

    @classmethod
    def check_params(cls, model: str, params: Mapping[str, Any]) -> None:
        if params.get("thinking") is False and _is_deepseek_reasoner(model):
            raise base.ParamError(f"{model} always thinks; turn Thinking on or pick deepseek-chat.")

    def wire_params(self, request: ChatRequest) -> dict[str, Any]:
        sent = super().wire_params(request)
        thinking = sent.pop("thinking", None)
        if thinking is not None and not _is_deepseek_reasoner(request.model):
            # The thinking switch (PROVIDERS.md §5, per LiteLLM citing DeepSeek's thinking-mode
            # guide: UNCONFIRMED from a primary source). deepseek-reasoner needs none.
            sent["thinking"] = {"type": "enabled" if thinking else "disabled"}
        return sent


def _is_deepseek_reasoner(model: str) -> bool:
    return model.startswith("deepseek-reasoner")


# xAI models that answer 400 to reasoning_effort ("does not support parameter
# reasoningEffort"): Grok 4 and its fast variants, grok-code-fast, Grok 3 (not mini) and
# Grok 2. UNCONFIRMED (PROVIDERS.md §4 says only "reasoning models" take it; the list is
# from xAI's reasoning guide as quoted by client projects). grok-3-mini takes low or high;
# newer names (grok-4.3, …) are sent what the person set.
_XAI_NO_EFFORT = re.compile(r"^(?:grok-4(?![.\d])|grok-code|grok-2|grok-3(?!-mini))")


class XAI(OpenAIChat):
    name = "xai"
    display_name = "xAI"
    default_base_url = "https://api.x.ai/v1"
    key_env = "XAI_API_KEY"
    supports_images = True  # OpenAI image_url parts (PROVIDERS.md §4)
    supports_tools = True
    # Some models refuse some of these (stop: grok-3-mini, grok-4; frequency_penalty:
    # grok-4, per LiteLLM); the API's 400 then says which.
    params = (
        *ALL_SAMPLING,
        dataclasses.replace(
            REASONING_EFFORT,
            choices=("low", "high"),
            description="How long grok-3-mini thinks before answering.",
        ),
    )

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        error = await super().status_error(response, request)
        if response.status_code == 400 and "incorrect api key" in error.message.lower():
            # xAI answers a bad key with 400 {"code": "Client specified an invalid argument",
            # "error": "Incorrect API key provided: …"}; not in PROVIDERS.md §4 (UNCONFIRMED
            # there), seen in client projects' bug reports.
            message = error.message.replace("refused the request", "rejected the API key", 1)
            return ProviderError(ErrorKind.AUTH, message, permanent=True, status=400)
        return error

    @classmethod
    def check_params(cls, model: str, params: Mapping[str, Any]) -> None:
        if params.get("reasoning_effort") is not None and _XAI_NO_EFFORT.match(model):
            raise base.ParamError(
                f"{model} decides for itself how long to think and takes no Reasoning effort; "
                "clear it and send again."
            )


class OllamaOpenAI(OpenAIChat):
    name = "ollama"
    display_name = "Ollama"
    default_base_url = "http://127.0.0.1:11434/v1"
    needs_key = False
    supports_tools = True
    # Base64 image_url parts only: remote image URLs are not supported (PROVIDERS.md §14b).
    supports_images = True
    image_urls = False


class LlamaCpp(OpenAIChat):
    """llama.cpp's server; it ignores ``stream_options``, so it reports no usage.

    No tools (its function calling is not reliable when streaming) and no images (the
    local model, SmolLM2, reads text only).
    """

    name = "local"
    display_name = "Local"
    default_base_url = "http://127.0.0.1:8081/v1"
    needs_key = False
    supports_tools = False
    supports_images = False


class OpenAICompatible(OpenAIChat):
    """Any server that speaks the format, at a base URL the user gives; what a given model
    takes (images, tools) is the catalog's to say."""

    name = "openai_compatible"
    display_name = "OpenAI-compatible server"
    needs_key = False
    supports_tools = True
    supports_images = True
    # vLLM and the like: video_url (a web address or a data URL) and input_audio; whether
    # the model behind takes them is the person's to know (its error says so if not).
    video_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file", "url"})
    audio_forms: ClassVar[frozenset[base.MediaForm]] = frozenset({"file"})
