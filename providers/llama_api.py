"""Meta's Llama API (PROVIDERS.md §10): its own stream shapes at ``{base}/chat/completions``,
and an OpenAI-compatible endpoint at ``/compat/v1``.

The native stream is SSE whose every ``data:`` is ``{"id", "event": {...}}``: ``event_type``
start, progress, complete, then metrics; text in ``event.delta.text``; tool calls as
``event.delta`` of type ``tool_call`` with argument fragments; the finish in
``event.stop_reason``; token counts as ``metrics`` items. There is no ``[DONE]``: the server
closes the connection.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from providers import base
from providers.base import ChatRequest, ProviderError
from providers.errors import error_body, error_details, redact, stream_error
from providers.http import HTTPProvider, JSONLines, items, obj, to_send
from providers.openai_compat import OpenAIChat, PendingToolCall, chat_messages, tool_spec
from providers.sse import iter_sse, read_rest

# Bounds UNCONFIRMED (the SDK gives none): 1 is no penalty, as in the usual samplers.
REPETITION_PENALTY = base.Param(
    "repetition_penalty",
    "Repetition penalty",
    "float",
    "Above 1 pushes against repeating words; 1 turns it off.",
    0,
    2,
)

_FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}

# Metric names of the token counts: num_prompt_tokens and num_completion_tokens are
# UNCONFIRMED (PROVIDERS.md §10), so the usual other spellings are read too.
_INPUT_METRICS = ("num_prompt_tokens", "prompt_tokens", "input_tokens")
_OUTPUT_METRICS = ("num_completion_tokens", "completion_tokens", "output_tokens")


def error_text(raw: bytes) -> str:
    """The human part of an error body. Its shape is UNCONFIRMED (PROVIDERS.md §10), so the
    usual ones are read: ``{"error": {"message"}}``, ``{"error": "…"}``, ``{"message"}``,
    ``{"detail": "…"}``, ``{"title", "detail"}`` and FastAPI's ``{"detail": [{"msg"}]}``;
    anything else is given as the text it is."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text
    return _message(body) or text


def _message(body: Any) -> str:
    message, _ = error_details(body)
    if message or not isinstance(body, dict):
        return message
    detail = body.get("detail")
    if isinstance(detail, dict):
        detail = detail.get("message") or detail.get("msg")
    if isinstance(detail, list):
        detail = "; ".join(str(obj(d).get("msg", "")) for d in detail if obj(d).get("msg"))
    title = body.get("title")
    words = [w for w in (title, detail) if isinstance(w, str) and w]
    return ": ".join(words)


async def llama_error(
    provider: str, response: httpx.Response, key: str, limits: base.ReadLimits
) -> ProviderError:
    """A non-2xx answer as a :class:`ProviderError`; Retry-After is honoured."""
    raw = await error_body(response, limits)
    detail = redact(error_text(raw), key)
    return base.error_for_status(provider, response.status_code, detail, response.headers)


def _in_stream_error(provider: str, data: dict[str, Any] | None, key: str) -> ProviderError:
    """An error event's data, whatever its shape, as :func:`stream_error` reads it."""
    body: dict[str, Any] = dict(data or {})
    if not body.get("error"):
        code = body.get("code") or body.get("type") or body.get("status")
        error = {"message": _message(body)}
        if isinstance(code, str | int) and not isinstance(code, bool):
            error["code"] = str(code)
        body = {"error": error}
    return stream_error(provider, body, key)


class LlamaAPI(HTTPProvider):
    name = "llama_api"
    display_name = "Meta Llama API"
    default_base_url = "https://api.llama.com/v1"
    key_env = "LLAMA_API_KEY"
    supports_images = True  # image_url parts, by web address or data URL (Llama 4 models)
    supports_tools = True
    # No stop and no seed: the API's parameter list has neither (PROVIDERS.md §10).
    # Temperature's upper bound is UNCONFIRMED; the API's own 400 says if 2 is too high.
    params = (base.TEMPERATURE, base.TOP_P, base.TOP_K, base.MAX_TOKENS, REPETITION_PENALTY)

    def url(self, request: ChatRequest) -> str:
        return f"{self.base_url(request)}/chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = chat_messages(request, OpenAIChat.message)  # text, or OpenAI's parts
        body: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.tools:
            body["tools"] = [tool_spec(t) for t in request.tools]
        params = request.params
        body.update(
            to_send(
                params,
                *("temperature", "top_p", "top_k", "repetition_penalty"),
                max_tokens="max_completion_tokens",
            )
        )
        body["stream"] = True
        return body

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        return await llama_error(
            self.display_name, response, request.credentials.api_key, request.limits
        )

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        key = request.credentials.api_key
        lines = JSONLines(self.display_name)
        calls: list[PendingToolCall] = []
        budget = base.ToolCallBudget(self.display_name, request.limits)
        metrics: dict[str, int] = {}
        complete = False
        stop_reason: str | None = None
        events = iter_sse(response, request.limits, self.display_name)
        async for sse in events:
            data = sse.data.strip()
            if data == "[DONE]":
                break  # not sent, as far as anyone knows (UNCONFIRMED); harmless if it is
            if not data:
                continue
            chunk = lines.decode(data)
            if sse.event == "error":
                raise _in_stream_error(self.display_name, chunk, key)
            if chunk is None:
                continue
            if chunk.get("error"):
                raise _in_stream_error(self.display_name, chunk, key)
            event = obj(chunk.get("event"))
            # The current SDK has metrics inside the event (event_type "metrics"), an earlier
            # one beside it at the top: read both.
            for metric in (*items(event.get("metrics")), *items(chunk.get("metrics"))):
                _add_metric(metrics, metric)
            delta = obj(event.get("delta"))
            kind = delta.get("type")
            if kind == "text":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    yield base.TextDelta(text)
            elif kind == "reasoning":
                # {"type": "reasoning", "reasoning": "…"}; an earlier SDK also had "answer",
                # whose meaning is UNCONFIRMED, so it is left out.
                thought = delta.get("reasoning")
                if isinstance(thought, str) and thought:
                    yield base.ReasoningDelta(thought)
            elif kind == "tool_call":
                _add_tool_fragment(calls, delta, budget)
            reason = event.get("stop_reason")
            if isinstance(reason, str) and reason:
                stop_reason = reason
            if event.get("event_type") == "complete":
                complete = True
        if not complete and stop_reason is None:
            return  # closed before the complete event: cut short, the caller reports it
        for index, pending in enumerate(calls):
            yield pending.call(index, "{}")
        usage = _usage(metrics)
        if usage is not None:
            yield usage
        if stop_reason is None:
            stop_reason = "tool_calls" if calls else "stop"
        yield base.Finish(_FINISH_REASONS.get(stop_reason, stop_reason))
        await read_rest(events)  # the connection is kept for the next answer


def _add_tool_fragment(
    calls: list[PendingToolCall], delta: Mapping[str, Any], budget: base.ToolCallBudget
) -> None:
    """Fold one ``tool_call`` delta into ``calls``. The first fragment of a call brings its
    id and name, later ones argument text only (the SDK's own example reads them so); a
    fragment with a new id, or a second name without one, starts the next call."""
    call_id = delta.get("id") if isinstance(delta.get("id"), str) else ""
    function = obj(delta.get("function"))
    name = function.get("name") if isinstance(function.get("name"), str) else ""
    arguments = function.get("arguments")
    if not (call_id or name or arguments):
        return  # nothing to add (an empty fragment, or one of an unknown shape)
    last = calls[-1] if calls else None
    if (
        last is None
        or (call_id and last.id and call_id != last.id)
        or (not call_id and name and last.name)
    ):
        budget.call()
        last = PendingToolCall()
        calls.append(last)
    if call_id:
        last.id = call_id
    if name:
        last.name = name
    if isinstance(arguments, str):
        last.arguments.append(budget.add(arguments))
    elif isinstance(arguments, dict):
        # An object instead of text: UNCONFIRMED.
        last.arguments.append(budget.add(json.dumps(arguments)))


def _add_metric(metrics: dict[str, int], metric: Any) -> None:
    item = obj(metric)
    name, value = item.get("metric"), item.get("value")
    if (
        isinstance(name, str)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (name in metrics or len(metrics) < 32)  # a server's names without end: not kept
    ):
        metrics[name] = int(value)  # "value: float" in the SDK; counts are whole


def _usage(metrics: Mapping[str, int]) -> base.Usage | None:
    def first(names: tuple[str, ...]) -> int | None:
        return next((metrics[n] for n in names if n in metrics), None)

    prompt, completion = first(_INPUT_METRICS), first(_OUTPUT_METRICS)
    if prompt is None and completion is None:
        return None
    return base.Usage(input_tokens=prompt, output_tokens=completion)


class LlamaAPICompatible(OpenAIChat):
    """The same models through ``/compat/v1``: OpenAI chunks and ``data: [DONE]``."""

    name = "llama_api_compatible"
    display_name = "Meta Llama API (OpenAI-compatible)"
    default_base_url = "https://api.llama.com/compat/v1"
    key_env = "LLAMA_API_KEY"
    supports_images = True
    supports_tools = True
    # The native API's name for it; whether /compat/v1 also takes max_tokens is UNCONFIRMED.
    max_tokens_field = "max_completion_tokens"
    # Only what the native API has too: no stop, seed or penalties (PROVIDERS.md §10).
    params = (base.TEMPERATURE, base.TOP_P, base.MAX_TOKENS)

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        return await llama_error(
            self.display_name, response, request.credentials.api_key, request.limits
        )
