"""Ollama's own chat API, ``POST /api/chat`` (PROVIDERS.md §14a): newline-delimited JSON,
one object a line, the last with ``done: true``.

The OpenAI-compatible ``/v1`` path of the same server is :class:`OllamaOpenAI` in
``openai_compat``; this one also streams the model's thinking and takes tool results back
as Ollama writes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpx

from providers import base, reading
from providers.base import ChatRequest, ErrorKind, ProviderError
from providers.errors import error_details, http_error, redact, stream_error
from providers.http import HTTPProvider, JSONLines, deltas, int_or_none, items, obj
from providers.openai_compat import chat_messages, tool_spec
from providers.sse import read_rest

NUM_CTX = base.Param(
    "num_ctx",
    "Context window",
    "int",
    "Tokens the model keeps in view (prompt and answer); more needs more memory.",
    256,
    1_048_576,
)
REPEAT_PENALTY = base.Param(
    "repeat_penalty",
    "Repeat penalty",
    "float",
    "Above 1 pushes against repeating recent words; 1 turns it off.",
    0,
    2,
)
THINK = base.Param(
    "think",
    "Thinking",
    "bool",
    "Let a thinking model (qwen3, deepseek-r1, gpt-oss, …) reason before answering; "
    "off answers at once.",
)

# Our parameter names under Ollama's option names; everything sampling goes in "options".
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "stop": "stop",
    "max_tokens": "num_predict",
    "num_ctx": "num_ctx",
    "repeat_penalty": "repeat_penalty",
}

_FINISH_REASONS = {"stop": "stop", "length": "length"}

# 404 {"error": "model \"llama3.2\" not found, try pulling it first"} (older servers quote
# with '…'); ollama.com says "model not found".
_MODEL_NOT_FOUND = re.compile(r"model\b.*\bnot found|try pulling", re.IGNORECASE)


def iter_ndjson(
    response: httpx.Response, limits: base.ReadLimits | None = None, provider: str = "Ollama"
) -> AsyncIterator[str]:
    """The lines of a newline-delimited JSON body, as they complete, within ``limits``.

    Split on ``\\n`` bytes only (:func:`providers.reading.lines`): ``response.aiter_lines``
    would also split at U+0085 or U+2028, which JSON leaves unescaped inside strings (Go
    escapes U+2028, not U+0085), and so cut an answer in two.
    """
    return reading.lines(response, limits, provider, newline_only=True)


def images(message: base.Message) -> list[str]:
    """The message's images as bare base64, the only form ``images`` takes."""
    found: list[str] = []
    for part in message.content if not isinstance(message.content, str) else ():
        if not isinstance(part, base.ImagePart):
            continue
        if part.url.startswith("data:") and ";base64," in part.url:
            found.append(part.url.partition(";base64,")[2])
        elif part.url:
            # Ollama reads no web addresses; said before the call, without the address (a
            # signed URL carries a token).
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                "Ollama cannot fetch an image from a web address; attach the image as a file.",
                permanent=True,
            )
        else:
            found.append(part.data)
    return found


class Ollama(HTTPProvider):
    name = "ollama_native"
    display_name = "Ollama"
    default_base_url = "http://127.0.0.1:11434"
    needs_key = False
    # Optional: sent as a Bearer token when set, for ollama.com or a server behind a proxy
    # that checks one. A local server needs none.
    key_env = "OLLAMA_API_KEY"
    supports_images = True  # for vision models (llava, gemma3, qwen2.5vl …): base64 only
    supports_tools = True
    params = (
        base.TEMPERATURE,
        base.TOP_P,
        base.TOP_K,
        base.MAX_TOKENS,
        base.SEED,
        base.STOP,
        NUM_CTX,
        REPEAT_PENALTY,
        THINK,
    )

    def url(self, request: ChatRequest) -> str:
        base_url = self.base_url(request)
        # A base URL copied from the OpenAI-compatible setup (…/v1) or from ollama.com's docs
        # (…/api) names the same server; the native path is always {server}/api/chat.
        for suffix in ("/v1", "/api"):
            base_url = base_url.removesuffix(suffix)
        return f"{base_url}/api/chat"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = chat_messages(request, self.message)
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if request.tools:
            body["tools"] = [tool_spec(t) for t in request.tools]
        params = request.params
        if params.get("think") is not None:
            body["think"] = bool(params["think"])
        options = {
            wire: list(params[name]) if name == "stop" else params[name]
            for name, wire in _OPTIONS.items()
            if params.get(name) is not None
        }
        if options:
            body["options"] = options
        # keep_alive is left to the server's setting: how long a model stays loaded is the
        # machine owner's choice, not one pane's.
        return body

    @staticmethod
    def message(message: base.Message) -> dict[str, Any]:
        sent: dict[str, Any] = {"role": message.role, "content": message.text}
        pictures = images(message)
        if pictures:
            sent["images"] = pictures
        return sent

    async def status_error(self, response: httpx.Response, request: ChatRequest) -> ProviderError:
        key = request.credentials.api_key
        error, body = await http_error(self.display_name, response, key, request.limits)
        status = response.status_code
        said, _ = error_details(body)  # Ollama's own words, from {"error": "…"}
        if status == 404 and _MODEL_NOT_FOUND.search(said):
            model = redact(request.model, key)
            return ProviderError(
                ErrorKind.BAD_REQUEST,
                f"Ollama does not have the model {model} ({status}); "
                f"run `ollama pull {model}` on the Ollama machine, then send again.",
                permanent=True,
                status=status,
            )
        if status == 404:
            # Go's own "404 page not found": no /api/chat here, so not an Ollama server.
            return ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{error.message} — is the base URL an Ollama server (http://host:11434)?",
                permanent=True,
                status=status,
            )
        if status >= 500 and "more system memory" in said:
            # "model requires more system memory (…) than is available (…)": trying again
            # only loads the model again.
            return ProviderError(ErrorKind.UPSTREAM, error.message, permanent=True, status=status)
        if status == 401 and not key:
            return ProviderError(
                ErrorKind.AUTH,
                f"This Ollama server wants an API key ({status}); set OLLAMA_API_KEY.",
                permanent=True,
                status=status,
            )
        return error

    async def read_events(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[base.Event, None]:
        lines = JSONLines(self.display_name)
        calls = 0
        lines_read = iter_ndjson(response, request.limits, self.display_name)
        async for line in lines_read:
            if not line.strip():
                continue
            chunk = lines.decode(line)
            if chunk is None:
                continue
            if chunk.get("error"):
                # Mid-stream the status stays 200 and the last line is {"error": "…"}.
                raise stream_error(self.display_name, chunk, request.credentials.api_key)
            message = obj(chunk.get("message"))
            for event in deltas(message.get("thinking"), message.get("content")):
                yield event
            for call in items(message.get("tool_calls")):
                # Each call arrives whole, its arguments a JSON object, not fragments.
                if not isinstance(call, dict):
                    continue
                calls += 1
                function = obj(call.get("function"))
                yield base.ToolCall(
                    str(call.get("id") or f"call_{calls}"),
                    str(function.get("name", "")),
                    _arguments(function.get("arguments")),
                )
            if chunk.get("done") is True:
                yield _usage(chunk)
                reason = chunk.get("done_reason")
                reason = reason if isinstance(reason, str) and reason else "stop"
                finish = _FINISH_REASONS.get(reason, reason)
                if finish == "stop" and calls:
                    # Ollama says "stop" after tool calls; say it the way the others do.
                    finish = "tool_calls"
                yield base.Finish(finish)
                await read_rest(lines_read)  # the connection is kept for the next answer
                return
        # The body ended before a done line: cut short, no Finish; the caller reports it.


def _arguments(value: Any) -> str:
    """A call's arguments as JSON text. Ollama sends an object; a string (some proxies
    re-encode) is passed on as written."""
    if isinstance(value, str):
        return value
    arguments = value if isinstance(value, dict) else {}
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def _usage(final: Mapping[str, Any]) -> base.Usage:
    # eval_count includes the thinking tokens; Ollama does not count them apart. A prompt
    # served wholly from cache may come without prompt_eval_count.
    return base.Usage(
        input_tokens=int_or_none(final.get("prompt_eval_count")),
        output_tokens=int_or_none(final.get("eval_count")),
    )
