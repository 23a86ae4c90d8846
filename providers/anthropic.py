"""Anthropic's Messages API (PROVIDERS.md §2): named SSE events, no ``[DONE]``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from providers import base
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import stream_error
from providers.http import HTTPProvider, JSONLines, int_or_none, obj, to_send
from providers.sse import iter_sse, read_rest

DEFAULT_MAX_TOKENS = 4096  # max_tokens is required by the API

TOP_K = dataclasses.replace(base.TOP_K, minimum=0, maximum=500)
THINKING_BUDGET = base.Param(
    "thinking_budget",
    "Thinking budget",
    "int",
    "Tokens the model may spend thinking before it answers (extended thinking); "
    "less than Max output tokens.",
    1024,
    64000,
)
THINKING_MIN_TOP_P = 0.95  # the lowest top_p allowed with thinking on

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def tool_spec(tool: base.ToolSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["input_schema"] = dict(tool.parameters)
    return spec


def check_thinking(params: Mapping[str, Any]) -> None:
    """Refuse, with :class:`ParamError`, settings the API refuses alongside a thinking
    budget: the budget must be below max_tokens, and thinking does not go with a changed
    temperature or top_k, nor top_p under 0.95. Only the first is in PROVIDERS.md §2; the
    others are from Anthropic's extended-thinking guide (UNCONFIRMED there)."""
    budget = params.get("thinking_budget")
    if budget is None:
        return
    max_tokens = params.get("max_tokens")
    if max_tokens is not None and budget >= max_tokens:
        raise base.ParamError(
            f"Thinking budget ({budget}) must be less than Max output tokens ({max_tokens}); "
            "raise Max output tokens or lower the budget."
        )
    clashes = [
        label
        for name, label in (("temperature", "Temperature"), ("top_k", "Top K"))
        if params.get(name) is not None and not (name == "temperature" and params[name] == 1)
    ]
    if clashes:
        raise base.ParamError(
            f"{' and '.join(clashes)} cannot be set together with a thinking budget; "
            "clear one of them."
        )
    top_p = params.get("top_p")
    if top_p is not None and top_p < THINKING_MIN_TOP_P:
        raise base.ParamError(
            f"With a thinking budget, Top P must be from {THINKING_MIN_TOP_P:g} to 1; "
            f"got {top_p:g}."
        )


def image_block(part: base.ImagePart) -> dict[str, Any]:
    url = part.url
    if url.startswith("data:") and ";base64," in url:
        mime, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if url:
        return {"type": "image", "source": {"type": "url", "url": url}}
    source = {"type": "base64", "media_type": part.mime_type, "data": part.data}
    return {"type": "image", "source": source}


class Anthropic(HTTPProvider):
    name = "anthropic"
    display_name = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    key_env = "ANTHROPIC_API_KEY"
    supports_images = True
    supports_tools = True
    # Anthropic's temperature goes from 0 to 1, not 2. There is no seed.
    params = (
        dataclasses.replace(base.TEMPERATURE, maximum=1),
        base.TOP_P,
        TOP_K,
        base.MAX_TOKENS,
        base.STOP,
        THINKING_BUDGET,
    )

    @classmethod
    def clean_params(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        cleaned = super().clean_params(values)
        check_thinking(cleaned)
        return cleaned

    def url(self, request: ChatRequest) -> str:
        return f"{self.base_url(request)}/v1/messages"

    def headers(self, request: ChatRequest) -> dict[str, str]:
        return {
            "x-api-key": request.credentials.api_key,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }

    def body(self, request: ChatRequest) -> dict[str, Any]:
        params = request.params
        try:
            check_thinking(params)  # cleaned params passed it already; others may not have
        except base.ParamError as error:
            raise self.not_called(error) from None
        budget = params.get("thinking_budget")
        max_tokens = params.get("max_tokens")
        if max_tokens is None:
            # max_tokens must exceed the thinking budget, so leave room for the answer.
            max_tokens = DEFAULT_MAX_TOKENS + (budget or 0)
        body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens}
        if request.system_prompt:
            body["system"] = request.system_prompt
        body["messages"] = [self.message(m) for m in request.conversation]
        if request.tools:
            body["tools"] = [tool_spec(t) for t in request.tools]
        body.update(to_send(params, "temperature", "top_p", "top_k"))
        if budget is not None:
            body.pop("temperature", None)  # only 1 passed the check, and 1 is the default
        if params.get("stop"):
            body["stop_sequences"] = list(params["stop"])
        if budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body["stream"] = True
        return body

    @staticmethod
    def message(message: base.Message) -> dict[str, Any]:
        if isinstance(message.content, str):
            return {"role": message.role, "content": message.content}
        blocks = [
            image_block(p) if isinstance(p, base.ImagePart) else {"type": "text", "text": p.text}
            for p in message.content
        ]
        return {"role": message.role, "content": blocks}

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        error = await super().status_error(response, request)
        if response.status_code == 529:
            # Anthropic's own status for "overloaded": worth another try.
            message = error.message.replace("had a server error", "is overloaded", 1)
            error = ProviderError(
                ErrorKind.UPSTREAM,
                message,
                permanent=False,
                status=529,
                retry_after=error.retry_after,
            )
        return error

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        lines = JSONLines(self.display_name)
        tools: dict[int, _PendingTool] = {}  # by content block index
        budget = base.ToolCallBudget(self.display_name, request.limits)
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        events = iter_sse(response, request.limits, self.display_name)
        async for sse in events:
            if not sse.data.strip():
                continue
            data = lines.decode(sse.data)
            if data is None:
                continue
            kind = sse.event if sse.event != "message" else str(data.get("type", ""))
            if kind == "error" or data.get("type") == "error":
                raise stream_error(self.display_name, data, request.credentials.api_key)
            index = data.get("index", 0) if isinstance(data.get("index"), int) else 0
            if kind == "message_start":
                usage = obj(obj(data.get("message")).get("usage"))
                input_tokens = _input_tokens(usage)
                output_tokens = int_or_none(usage.get("output_tokens"))
            elif kind == "content_block_start":
                block = obj(data.get("content_block"))
                if block.get("type") == "tool_use":
                    budget.call()
                    tools[index] = _PendingTool(
                        str(block.get("id", "")), str(block.get("name", "")), block.get("input")
                    )
                elif block.get("type") == "text" and block.get("text"):
                    yield base.TextDelta(str(block["text"]))
                elif block.get("type") == "thinking" and block.get("thinking"):
                    yield base.ReasoningDelta(str(block["thinking"]))
            elif kind == "content_block_delta":
                delta = obj(data.get("delta"))
                dtype = delta.get("type")
                if dtype == "text_delta" and delta.get("text"):
                    yield base.TextDelta(str(delta["text"]))
                elif dtype == "thinking_delta" and delta.get("thinking"):
                    yield base.ReasoningDelta(str(delta["thinking"]))
                elif dtype == "input_json_delta" and index in tools:
                    tools[index].parts.append(budget.add(str(delta.get("partial_json", ""))))
            elif kind == "content_block_stop":
                tool = tools.pop(index, None)
                if tool is not None:
                    yield tool.call()
            elif kind == "message_delta":
                reason = obj(data.get("delta")).get("stop_reason")
                if isinstance(reason, str) and reason:
                    stop_reason = reason
                usage = obj(data.get("usage"))
                # output_tokens here is cumulative: the last one is the total.
                output_tokens = int_or_none(usage.get("output_tokens")) or output_tokens
                input_tokens = _input_tokens(usage) or input_tokens
            elif kind == "message_stop":
                break
            # ping, signature_delta and events added later are ignored.
        else:
            if stop_reason is None:
                return  # cut short: no Finish, the caller reports it
        yield base.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        yield base.Finish(_FINISH_REASONS.get(stop_reason or "end_turn", stop_reason or "stop"))
        await read_rest(events)  # the connection is kept for the next answer


@dataclasses.dataclass
class _PendingTool:
    id: str
    name: str
    input: Any
    parts: list[str] = dataclasses.field(default_factory=list)

    def call(self) -> base.ToolCall:
        arguments = "".join(self.parts)
        if not arguments:
            # A tool without arguments may send no input_json_delta at all.
            arguments = json.dumps(self.input if isinstance(self.input, dict) else {})
        return base.ToolCall(self.id, self.name, arguments)


def _input_tokens(usage: Any) -> int | None:
    """All input tokens: the uncached ones plus those written to or read from the cache."""
    if not isinstance(usage, dict):
        return None
    counts = [
        int_or_none(usage.get(k))
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    if counts[0] is None:
        return None
    return sum(c or 0 for c in counts)
