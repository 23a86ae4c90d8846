"""The OpenAI Chat Completions wire format, and the vendors that speak it.

One base class, :class:`OpenAIChat`; each vendor is a subclass that sets its name, base URL,
key variable, parameters and the few switches where the dialects differ (PROVIDERS.md §1, §4,
§5, §6a, §14b).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from providers.base import (
    FREQUENCY_PENALTY,
    MAX_TOKENS,
    PRESENCE_PENALTY,
    SEED,
    STOP,
    TEMPERATURE,
    TOP_P,
    ChatRequest,
    ErrorKind,
    Event,
    Finish,
    ImagePart,
    Message,
    Param,
    Provider,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Usage,
)
from providers.http import (
    JSONLines,
    bearer,
    error_details,
    http_error,
    items,
    obj,
    stream_error,
)
from providers.sse import iter_sse

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the deprecated single-function form
    "content_filter": "content_filter",
}

ALL_SAMPLING = (TEMPERATURE, TOP_P, MAX_TOKENS, SEED, STOP, PRESENCE_PENALTY, FREQUENCY_PENALTY)


@dataclass
class _PendingToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = dataclasses.field(default_factory=list)


class OpenAIChat(Provider):
    """``POST {base}/chat/completions`` with ``stream: true``, read as SSE ``data:`` chunks."""

    params: ClassVar[tuple[Param, ...]] = ALL_SAMPLING
    #: The body field the shared ``max_tokens`` parameter is sent as.
    max_tokens_field: ClassVar[str] = "max_tokens"
    #: Ask for the usage chunk (``stream_options.include_usage``).
    send_stream_options: ClassVar[bool] = True

    def url(self, request: ChatRequest) -> str:
        base = self.base_url(request)
        if not base:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"No base URL configured for {self.display_name}.",
                permanent=True,
            )
        return f"{base}/chat/completions"

    def headers(self, request: ChatRequest) -> dict[str, str]:
        return bearer(request.credentials.api_key)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.extend(self.message(m) for m in request.conversation)
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if self.send_stream_options:
            body["stream_options"] = {"include_usage": True}
        declared = {p.name for p in self.params}
        for name, value in request.params.items():
            if name in declared and value is not None:
                body[self.max_tokens_field if name == "max_tokens" else name] = value
        return body

    @staticmethod
    def message(message: Message) -> dict[str, Any]:
        content = message.content
        if isinstance(content, str) or not any(isinstance(p, ImagePart) for p in content):
            # Text only: a plain string, which every compatible server accepts.
            return {"role": message.role, "content": message.text}
        parts = [
            {"type": "image_url", "image_url": {"url": p.data_url}}
            if isinstance(p, ImagePart)
            else {"type": "text", "text": p.text}
            for p in content
        ]
        return {"role": message.role, "content": parts}

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncIterator[Event]:
        url, body = self.url(request), self.body(request)
        key = request.credentials.api_key
        async with client.stream("POST", url, json=body, headers=self.headers(request)) as response:
            if not response.is_success:
                raise await self.status_error(response, key)
            async with aclosing(self.read_events(response, key)) as events:
                async for event in events:
                    yield event

    async def status_error(self, response: httpx.Response, key: str) -> ProviderError:
        error, body = await http_error(self.display_name, response, key)
        if response.status_code == 429 and "insufficient_quota" in error_details(body):
            # OpenAI's "out of credit" also comes as 429; waiting will not fix it.
            return ProviderError(
                ErrorKind.AUTH,
                error.message.replace("Rate limited by", "Out of credit at", 1),
                permanent=True,
                status=429,
            )
        return error

    async def read_events(self, response: httpx.Response, key: str) -> AsyncGenerator[Event, None]:
        """Translate the chunks; :class:`Finish` is held back until the stream ends, because
        the usage chunk comes after the chunk with ``finish_reason``."""
        lines = JSONLines(self.display_name)
        tools: dict[int, _PendingToolCall] = {}
        finish: str | None = None
        usage: Usage | None = None
        done = saw_tools = False
        async for sse in iter_sse(response):
            data = sse.data.strip()
            if not data:
                continue
            if data == "[DONE]":
                done = True
                break
            chunk = lines.decode(data)
            if chunk is None:
                continue
            if chunk.get("error") or sse.event == "error":
                raise stream_error(self.display_name, chunk, key)
            if isinstance(chunk.get("usage"), dict):
                # Keep the last one: some servers repeat a running total on every chunk.
                usage = self.usage(chunk["usage"])
            for choice in items(chunk.get("choices")):
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = obj(choice.get("delta"))
                # DeepSeek, xAI and Qwen say reasoning_content; Ollama says reasoning.
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    yield ReasoningDelta(reasoning)
                content = delta.get("content")
                if isinstance(content, str) and content:
                    yield TextDelta(content)
                for fragment in items(delta.get("tool_calls")):
                    saw_tools = True
                    self.add_tool_fragment(tools, fragment)
                reason = choice.get("finish_reason")
                if isinstance(reason, str) and reason and reason != "null":
                    finish = _FINISH_REASONS.get(reason, reason)
                    for call in self.tool_calls(tools):
                        yield call
        if finish is None and not (done and lines.good):
            # Cut short (or nothing readable came): no Finish, so the caller reports it.
            return
        for call in self.tool_calls(tools):
            yield call
        if usage is not None:
            yield usage
        if finish is None:
            # [DONE] without a finish_reason. xAI may send "" instead of "tool_calls"
            # (PROVIDERS.md §4, per LiteLLM); otherwise the server says it is done.
            finish = "tool_calls" if saw_tools else "stop"
        yield Finish(finish)

    @staticmethod
    def add_tool_fragment(tools: dict[int, _PendingToolCall], fragment: Any) -> None:
        if not isinstance(fragment, dict):
            return
        index = fragment.get("index", len(tools))
        pending = tools.setdefault(index if isinstance(index, int) else 0, _PendingToolCall())
        if fragment.get("id"):
            pending.id = str(fragment["id"])
        function = obj(fragment.get("function"))
        if function.get("name"):
            pending.name = str(function["name"])
        if isinstance(function.get("arguments"), str):
            pending.arguments.append(function["arguments"])

    @staticmethod
    def tool_calls(tools: dict[int, _PendingToolCall]) -> list[ToolCall]:
        """The accumulated calls in index order; empties ``tools``."""
        calls = [
            ToolCall(t.id or f"call_{i}", t.name, "".join(t.arguments))
            for i, t in sorted(tools.items())
        ]
        tools.clear()
        return calls

    @staticmethod
    def usage(usage: Mapping[str, Any]) -> Usage:
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        details = usage.get("completion_tokens_details")
        reasoning = _int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
        total = _int(usage.get("total_tokens"))
        if (
            reasoning
            and None not in (prompt, completion, total)
            and total == (prompt or 0) + (completion or 0) + reasoning
        ):
            # xAI counts reasoning outside completion_tokens (PROVIDERS.md §4); the others,
            # like OpenAI, inside. Report output tokens the OpenAI way: reasoning included.
            completion = (completion or 0) + reasoning
        return Usage(input_tokens=prompt, output_tokens=completion, reasoning_tokens=reasoning)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


REASONING_EFFORT = Param(
    "reasoning_effort",
    "Reasoning effort",
    "choice",
    "How long a reasoning model thinks before answering.",
    choices=("minimal", "low", "medium", "high"),
)


class OpenAI(OpenAIChat):
    name = "openai"
    display_name = "OpenAI"
    default_base_url = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"
    supports_images = True
    # max_tokens is deprecated and refused by reasoning models (PROVIDERS.md §1).
    max_tokens_field = "max_completion_tokens"
    params = (*ALL_SAMPLING, REASONING_EFFORT)


class DeepSeek(OpenAIChat):
    name = "deepseek"
    display_name = "DeepSeek"
    default_base_url = "https://api.deepseek.com"
    key_env = "DEEPSEEK_API_KEY"
    # No seed: DeepSeek's support for it is UNCONFIRMED (PROVIDERS.md §5).
    params = (TEMPERATURE, TOP_P, MAX_TOKENS, STOP, PRESENCE_PENALTY, FREQUENCY_PENALTY)


class XAI(OpenAIChat):
    name = "xai"
    display_name = "xAI"
    default_base_url = "https://api.x.ai/v1"
    key_env = "XAI_API_KEY"
    # Some models refuse some of these (stop: grok-3-mini, grok-4; frequency_penalty:
    # grok-4, per LiteLLM); the API's 400 then says which.
    params = (
        *ALL_SAMPLING,
        dataclasses.replace(REASONING_EFFORT, choices=("low", "high")),
    )


class QwenCompatible(OpenAIChat):
    name = "qwen"
    display_name = "Alibaba Qwen"
    default_base_url = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    key_env = "DASHSCOPE_API_KEY"
    # The usage chunk with include_usage follows OpenAI here: UNCONFIRMED (PROVIDERS.md §6a).
    params = (
        TEMPERATURE,
        TOP_P,
        MAX_TOKENS,
        SEED,
        STOP,
        PRESENCE_PENALTY,
        Param(
            "enable_thinking",
            "Thinking",
            "bool",
            "Let Qwen3 models reason before answering.",
        ),
    )


class OllamaOpenAI(OpenAIChat):
    name = "ollama"
    display_name = "Ollama"
    default_base_url = "http://127.0.0.1:11434/v1"
    needs_key = False


class LlamaCpp(OpenAIChat):
    """llama.cpp's server; it ignores ``stream_options``, so it reports no usage."""

    name = "local"
    display_name = "Local"
    default_base_url = "http://127.0.0.1:8081/v1"
    needs_key = False


class OpenAICompatible(OpenAIChat):
    """Any server that speaks the format, at a base URL the user gives."""

    name = "openai_compatible"
    display_name = "OpenAI-compatible server"
    needs_key = False
