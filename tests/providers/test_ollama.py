"""What is Ollama's own in its native /api/chat (NDJSON): the request bytes (options, images as
base64, think), done reasons, its sentences for a missing key or model, lines split anywhere.
The scenarios every adapter shares are in test_contract.py."""

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
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from providers.ollama import Ollama
from tests.providers.replay import (
    KEY,
    Replay,
    chat,
    collect,
    error_body,
    pieces,
    recorded,
    sent_json,
)

URL = "http://127.0.0.1:11434/api/chat"

ANSWER = [
    TextDelta("Hello"),
    TextDelta("! How can I"),
    TextDelta(" help?"),
    Usage(input_tokens=26, output_tokens=9),
    Finish("stop"),
]


def ndjson(body: bytes | Replay, status: int = 200) -> httpx.Response:
    stream = body if isinstance(body, Replay) else Replay(pieces(body))
    return httpx.Response(status, headers={"content-type": "application/x-ndjson"}, stream=stream)


@respx.mock
async def test_request_puts_sampling_in_options_and_images_as_base64() -> None:
    route = respx.post(URL).mock(return_value=ndjson(recorded("ollama_native", "answer")))
    request = chat(
        "llava:7b",
        Message("system", "You are terse."),
        Message("user", "Hi"),
        Message("assistant", "Hello."),
        Message(
            "user",
            (
                TextPart("What is in "),
                ImagePart(data="iVBORw0KGgo=", mime_type="image/png"),
                TextPart("these?"),
                ImagePart(url="data:image/jpeg;base64,/9j/4AAQSkZJRg=="),
            ),
        ),
        key="",
        params=Ollama.clean_params(
            {
                "temperature": 0.2,
                "top_p": 0.9,
                "top_k": 40,
                "max_tokens": 256,
                "seed": 7,
                "stop": ["###", "END"],
                "num_ctx": 8192,
                "repeat_penalty": 1.1,
                "think": "off",
            }
        ),
    )

    await collect(Ollama(), request)

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(sent) == {
        "model": "llava:7b",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {
                "role": "user",
                "content": "What is in these?",
                "images": ["iVBORw0KGgo=", "/9j/4AAQSkZJRg=="],
            },
        ],
        "stream": True,
        "think": False,
        "options": {
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "seed": 7,
            "stop": ["###", "END"],
            "num_predict": 256,
            "num_ctx": 8192,
            "repeat_penalty": 1.1,
        },
    }


@respx.mock
async def test_bare_request_has_no_options_no_think_and_no_keep_alive() -> None:
    route = respx.post(URL).mock(return_value=ndjson(recorded("ollama_native", "answer")))

    await collect(Ollama(), chat("llama3.2:3b", key=""))

    assert sent_json(route.calls.last.request) == {
        "model": "llama3.2:3b",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
    }


@respx.mock
async def test_key_is_sent_as_bearer_and_a_v1_base_url_still_reaches_api_chat() -> None:
    route = respx.post("https://ollama.example.net/api/chat").mock(
        return_value=ndjson(recorded("ollama_native", "answer"))
    )

    events = await collect(Ollama(), chat("llama3.2:3b", base_url="https://ollama.example.net/v1/"))

    assert events == ANSWER
    assert route.calls.last.request.headers["authorization"] == f"Bearer {KEY}"


@respx.mock
async def test_thinking_streams_as_reasoning() -> None:
    route = respx.post(URL).mock(return_value=ndjson(recorded("ollama_native", "thinking")))
    request = chat(
        "qwen3:0.6b",
        Message("user", "17 × 23?"),
        key="",
        params=Ollama.clean_params({"think": True}),
    )

    events = await collect(Ollama(), request)

    assert sent_json(route.calls.last.request)["think"] is True
    assert events == [
        ReasoningDelta("The user"),
        ReasoningDelta(" wants 17 × 23: 17×20=340, 17×3=51."),
        TextDelta("17 × 23"),
        TextDelta(" = 391."),
        Usage(input_tokens=18, output_tokens=57),
        Finish("stop"),
    ]


@respx.mock
async def test_tool_calls_arrive_whole_with_object_arguments() -> None:
    route = respx.post(URL).mock(return_value=ndjson(recorded("ollama_native", "tool_call")))
    weather = ToolSpec(
        "get_weather",
        "Current weather in a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    request = dataclasses.replace(chat("qwen3:0.6b", key=""), tools=(weather, ToolSpec("get_time")))

    events = await collect(Ollama(), request)

    assert sent_json(route.calls.last.request)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    assert events == [
        ToolCall("call_k2xq7m1p", "get_weather", '{"city":"Oslo","unit":"celsius"}'),
        # Servers before 0.12 give no id: one is made up, unique within the answer.
        ToolCall("call_2", "get_time", '{"zone":"Europe/Oslo"}'),
        Usage(input_tokens=141, output_tokens=38),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_done_reason_length_and_a_missing_done_reason() -> None:
    data = recorded("ollama_native", "answer")
    respx.post(URL).mock(
        side_effect=[
            ndjson(data.replace(b'"done_reason":"stop"', b'"done_reason":"length"')),
            ndjson(data.replace(b'"done_reason":"stop",', b"")),
        ]
    )

    assert (await collect(Ollama(), chat("llama3.2:3b", key="")))[-1] == Finish("length")
    # Older servers send no done_reason: done is done.
    assert (await collect(Ollama(), chat("llama3.2:3b", key="")))[-1] == Finish("stop")


@respx.mock
async def test_401_without_a_key_says_which_variable_to_set() -> None:
    respx.post(URL).mock(return_value=error_body(401, {"error": "unauthorized"}))

    events = await collect(Ollama(), chat("llama3.2:3b", key=""))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "This Ollama server wants an API key (401); set OLLAMA_API_KEY.",
            True,
            status=401,
        )
    ]


@respx.mock
async def test_missing_model_tells_to_pull_it() -> None:
    route = respx.post(URL).mock(
        return_value=error_body(404, {"error": 'model "llama3.3" not found, try pulling it first'})
    )

    events = await collect(Ollama(), chat("llama3.3", key=""))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Ollama does not have the model llama3.3 (404); run `ollama pull llama3.3` on the "
            "Ollama machine, then send again.",
            True,
            status=404,
        )
    ]
    assert route.call_count == 1


@respx.mock
async def test_404_from_something_that_is_not_ollama() -> None:
    respx.post(URL).mock(return_value=httpx.Response(404, text="404 page not found"))

    events = await collect(Ollama(), chat("llama3.2:3b", key=""))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Ollama does not know this model or endpoint (404): 404 page not found — is the "
            "base URL an Ollama server (http://host:11434)?",
            True,
            status=404,
        )
    ]


@respx.mock
async def test_out_of_memory_is_not_retried() -> None:
    route = respx.post(URL).mock(
        return_value=error_body(
            500,
            {"error": "model requires more system memory (5.6 GiB) than is available (3.1 GiB)"},
        )
    )

    events = await collect(Ollama(), chat("llama3.1:8b", key=""))

    assert events == [
        Failure(
            ErrorKind.UPSTREAM,
            "Ollama had a server error (500): model requires more system memory (5.6 GiB) "
            "than is available (3.1 GiB)",
            True,
            status=500,
        )
    ]
    assert route.call_count == 1


@respx.mock
async def test_lines_split_anywhere_and_a_last_line_without_newline() -> None:
    data = recorded("ollama_native", "thinking").rstrip(b"\n")
    # One byte a read: every line, and the two-byte "×", arrives in pieces.
    respx.post(URL).mock(return_value=ndjson(Replay(pieces(data, size=1))))

    events = await collect(Ollama(), chat("qwen3:0.6b", key=""))

    assert events[1] == ReasoningDelta(" wants 17 × 23: 17×20=340, 17×3=51.")
    assert events[-1] == Finish("stop")


@respx.mock
async def test_unicode_line_separators_inside_text_do_not_split_a_line() -> None:
    # JSON leaves U+0085 and U+2028 unescaped in strings; only "\n" ends an NDJSON line.
    line = '{"message":{"role":"assistant","content":"a\u0085b\u2028c"},"done":false}\n'
    data = line.encode() + recorded("ollama_native", "answer")
    respx.post(URL).mock(return_value=ndjson(data))

    events = await collect(Ollama(), chat("llama3.2:3b", key=""))

    assert events[0] == TextDelta("a\u0085b\u2028c")
    assert events[1:] == ANSWER


@respx.mock
async def test_web_address_image_is_refused_before_the_call() -> None:
    route = respx.post(URL).mock(return_value=ndjson(recorded("ollama_native", "answer")))
    request = chat(
        "llava:7b",
        Message("user", (ImagePart(url="https://example.com/cat.png?sig=s3cr3t"), TextPart("?"))),
        key="",
    )

    events = await collect(Ollama(), request)

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Ollama cannot fetch an image from a web address; attach the image as a file.",
            True,
        )
    ]
    assert route.call_count == 0


def test_parameters_follow_ollama_names_and_bounds() -> None:
    assert {p.name for p in Ollama.params} == {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "seed",
        "stop",
        "num_ctx",
        "repeat_penalty",
        "think",
    }
    with pytest.raises(ParamError, match="Context window must be a whole number from 256"):
        Ollama.clean_params({"num_ctx": 100})
    with pytest.raises(ParamError, match="Repeat penalty must be a number from 0 to 2"):
        Ollama.clean_params({"repeat_penalty": 3})
    with pytest.raises(ParamError, match="Unknown parameter: presence_penalty."):
        Ollama.clean_params({"presence_penalty": 1})
    assert not Ollama.needs_key


@respx.mock
async def test_unexpected_json_shapes_are_ignored_not_crashed_on() -> None:
    odd = (
        b'{"message":"text","done":false}\n'
        b'{"message":{"content":3,"thinking":null,"tool_calls":{"a":1}},"done":"yes"}\n'
        b'{"message":{"tool_calls":[7]},"done":false}\n'
        b"[1, 2]\n"
        b"\n"
    )
    respx.post(URL).mock(return_value=ndjson(odd + recorded("ollama_native", "answer")))

    assert await collect(Ollama(), chat("llama3.2:3b", key="")) == ANSWER
