"""What is Meta's Llama API's own, native and OpenAI-compatible: the request bytes, its error
body shapes, metrics as usage and the earlier shapes of its events. The scenarios every
adapter shares are in test_contract.py."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
import respx

from providers.base import (
    ErrorKind,
    Failure,
    Finish,
    ImagePart,
    Message,
    ParamError,
    TextDelta,
    TextPart,
    ToolSpec,
    Usage,
)
from providers.llama_api import LlamaAPI, LlamaAPICompatible
from tests.providers.contract import LLAMA_ANSWER, LLAMA_API, LLAMA_MODEL
from tests.providers.replay import (
    KEY,
    chat,
    collect,
    error_body,
    head,
    recorded,
    sent_json,
    sse,
)

URL = "https://api.llama.com/v1/chat/completions"
COMPAT_URL = "https://api.llama.com/compat/v1/chat/completions"
MODEL = LLAMA_MODEL

ANSWER = list(LLAMA_ANSWER.events)  # the contract table's (tests/providers/contract.py)


@respx.mock
async def test_request_uses_the_native_names() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("llama_api", "answer")))
    request = chat(
        MODEL,
        Message("system", "You are terse."),
        Message("user", "Hi"),
        Message("assistant", "Hello."),
        Message(
            "user",
            (
                TextPart("Compare these."),
                ImagePart(data="iVBORw0KGgo=", mime_type="image/png"),
                ImagePart(url="https://example.com/dog.jpg"),
            ),
        ),
        params=LlamaAPI.clean_params(
            {
                "temperature": 0.6,
                "top_p": 0.9,
                "top_k": 40,
                "max_tokens": 2048,
                "repetition_penalty": 1.1,
            }
        ),
    )

    await collect(LlamaAPI(), request)

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(sent) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}},
                ],
            },
        ],
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "max_completion_tokens": 2048,
        "stream": True,
    }


def test_there_is_no_stop_and_no_seed() -> None:
    with pytest.raises(ParamError, match="Unknown parameter: seed, stop."):
        LlamaAPI.clean_params({"stop": ["###"], "seed": 1})
    with pytest.raises(ParamError, match="Repetition penalty must be a number from 0 to 2"):
        LlamaAPI.clean_params({"repetition_penalty": 2.5})


@respx.mock
async def test_tool_call_fragments_are_assembled_per_call() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("llama_api", "tool_call")))
    weather = ToolSpec(
        "get_weather",
        "Current weather for a place.",
        {"type": "object", "properties": {"location": {"type": "string"}}},
    )
    request = dataclasses.replace(chat(MODEL), tools=(weather, ToolSpec("get_time")))

    events = await collect(LlamaAPI(), request)

    assert sent_json(route.calls.last.request)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a place.",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    assert events == list(LLAMA_API.tool_call.events)  # the contract table's


@respx.mock
async def test_missing_key_is_reported_before_any_call() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("llama_api", "answer")))

    events = await collect(LlamaAPI(), chat(MODEL, key=""))

    assert events == [
        Failure(
            ErrorKind.AUTH, "No API key for Meta Llama API. Set LLAMA_API_KEY or add a key.", True
        )
    ]
    assert route.call_count == 0


@respx.mock
async def test_error_bodies_of_other_shapes_are_read_and_keys_kept_out() -> None:
    respx.post(URL).mock(
        side_effect=[
            error_body(422, {"detail": [{"loc": ["body", "model"], "msg": "field required"}]}),
            error_body(400, {"error": {"message": f"Bad key {KEY}", "type": "invalid_request"}}),
            httpx.Response(400, text="<html>Bad Request</html>"),
        ]
    )

    messages = [(await collect(LlamaAPI(), chat(MODEL)))[0] for _ in range(3)]

    assert [getattr(m, "message", None) for m in messages] == [
        "Meta Llama API refused the request (422): field required",
        "Meta Llama API refused the request (400): Bad key [redacted]",
        "Meta Llama API refused the request (400): <html>Bad Request</html>",
    ]


@respx.mock
async def test_closed_after_complete_but_before_metrics_still_finishes() -> None:
    data = recorded("llama_api", "answer")
    respx.post(URL).mock(return_value=sse(head(data, b'"event_type":"metrics"')))

    events = await collect(LlamaAPI(), chat(MODEL))

    assert events == [*ANSWER[:3], Finish("stop")]


@respx.mock
async def test_earlier_shapes_top_level_metrics_and_done_are_read() -> None:
    # An earlier SDK put metrics beside the event; [DONE] is not known to be sent.
    stream = (
        b'data: {"event":{"event_type":"progress","delta":{"type":"text","text":"Hi"}}}\n\n'
        b'data: {"event":{"event_type":"complete","delta":{"type":"text","text":""},'
        b'"stop_reason":"stop"},"metrics":[{"metric":"num_prompt_tokens","value":3},'
        b'{"metric":"num_completion_tokens","value":1}]}\n\n'
        b"data: [DONE]\n\n"
    )
    respx.post(URL).mock(return_value=sse(stream))

    events = await collect(LlamaAPI(), chat(MODEL))

    assert events == [
        TextDelta("Hi"),
        Usage(input_tokens=3, output_tokens=1),
        Finish("stop"),
    ]


@respx.mock
async def test_unexpected_json_shapes_are_ignored_not_crashed_on() -> None:
    odd = (
        b'data: {"event":"progress"}\n\n'
        b'data: {"event":{"delta":"text","metrics":{"a":1}}}\n\n'
        b'data: {"event":{"delta":{"type":"tool_call","function":7}},"metrics":[3,'
        b'{"metric":"num_prompt_tokens","value":"many"}]}\n\n'
        b"data: [1, 2]\n\n"
    )
    data = recorded("llama_api", "answer")
    respx.post(URL).mock(return_value=sse(odd + data))

    events = await collect(LlamaAPI(), chat(MODEL))

    assert events == ANSWER


# --------------------------------------------------------------------------- /compat/v1


@respx.mock
async def test_compatible_endpoint_streams_openai_chunks() -> None:
    route = respx.post(COMPAT_URL).mock(return_value=sse(recorded("llama_api", "compat_answer")))
    request = chat(
        MODEL,
        Message("system", "Be brief."),
        Message("user", "Hi"),
        params=LlamaAPICompatible.clean_params({"temperature": 0.5, "max_tokens": 100}),
    )

    events = await collect(LlamaAPICompatible(), request)

    assert events == [
        TextDelta("Hello"),
        TextDelta(" there!"),
        Usage(input_tokens=12, output_tokens=4),
        Finish("stop"),
    ]
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(sent) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "max_completion_tokens": 100,
    }


def test_both_paths_share_the_key_and_declare_what_they_take() -> None:
    assert LlamaAPI.key_env == LlamaAPICompatible.key_env == "LLAMA_API_KEY"
    assert LlamaAPI.supports_tools and LlamaAPICompatible.supports_tools
    assert LlamaAPI.supports_images and LlamaAPICompatible.supports_images
    with pytest.raises(ParamError, match="Unknown parameter: stop."):
        LlamaAPICompatible.clean_params({"stop": ["x"]})
