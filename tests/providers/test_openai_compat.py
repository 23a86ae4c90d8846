"""What is each OpenAI Chat Completions server's own (OpenAI, DeepSeek, xAI, Qwen's compatible
mode, Ollama, llama.cpp, any compatible gateway): the request bytes, parameter rules per
model, capabilities, vendor error codes and odd shapes. The scenarios every adapter shares
are in test_contract.py."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
import respx

from providers.base import (
    ChatRequest,
    Credentials,
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
from providers.openai_compat import (
    XAI,
    DeepSeek,
    LlamaCpp,
    OllamaOpenAI,
    OpenAI,
    OpenAICompatible,
)
from providers.registry import PROVIDERS, provider_class
from tests.providers.replay import (
    KEY,
    Replay,
    chat,
    collect,
    cut_before,
    error_body,
    pieces,
    recorded,
    sent_json,
    sse,
)

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
DEEPSEEK_URL = "https://api.deepseek.com/chat/completions"

ANSWER = [
    TextDelta("Paris"),
    TextDelta(" is the"),
    TextDelta(" capital of France."),
    Usage(input_tokens=21, output_tokens=83, reasoning_tokens=64),
    Finish("stop"),
]

# --------------------------------------------------------------------------- OpenAI


WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = ToolSpec("get_time", parameters={"type": "object", "properties": {}})
WEATHER_SENT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CLOCK_SENT = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
PICTURES = Message(
    "user",
    (
        TextPart("And this one?"),
        ImagePart(data="iVBORw0KGgo=", mime_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg"),
    ),
)
PICTURES_SENT = {
    "role": "user",
    "content": [
        {"type": "text", "text": "And this one?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ],
}


def with_tools(request: ChatRequest, *tools: ToolSpec) -> ChatRequest:
    return dataclasses.replace(request, tools=tools)


@respx.mock
async def test_openai_request_is_exactly_the_chat_completions_body() -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))
    request = chat(
        "gpt-5-mini",
        Message("system", "Be brief."),
        Message("user", "What is this?"),
        Message("assistant", "A picture."),
        PICTURES,
        params=OpenAI.clean_params(
            {"max_tokens": "300", "stop": "END\nSTOP", "seed": 7, "reasoning_effort": "minimal"}
        ),
    )
    request = dataclasses.replace(
        with_tools(request, WEATHER, CLOCK),
        credentials=Credentials(KEY, {"organization": "org-Pq7rS9", "project": "proj_4Tz1"}),
    )

    await collect(OpenAI(), request)

    sent = route.calls.last.request
    assert str(sent.url) == OPENAI_URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["openai-organization"] == "org-Pq7rS9"
    assert sent.headers["openai-project"] == "proj_4Tz1"
    assert sent_json(sent) == {
        "model": "gpt-5-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is this?"},
            {"role": "assistant", "content": "A picture."},
            PICTURES_SENT,
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [WEATHER_SENT, CLOCK_SENT],
        "max_completion_tokens": 300,
        "stop": ["END", "STOP"],
        "seed": 7,
        "reasoning_effort": "minimal",
    }


@respx.mock
async def test_openai_chat_model_takes_sampling_and_max_completion_tokens() -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))
    params = OpenAI.clean_params(
        {
            "temperature": "0.2",
            "top_p": 0.9,
            "max_tokens": 64,
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5,
        }
    )

    await collect(OpenAI(), chat("gpt-4.1-mini", params=params))

    sent = route.calls.last.request
    assert "openai-organization" not in sent.headers
    assert "openai-project" not in sent.headers
    assert sent_json(sent) == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 64,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
    }


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "o3", "o4-mini", "o1-2024-12-17"])
@respx.mock
async def test_openai_reasoning_model_refuses_temperature_before_the_call(model: str) -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))
    params = OpenAI.clean_params({"temperature": 0.2, "top_p": 0.5})

    events = await collect(OpenAI(), chat(model, params=params))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            f"OpenAI was not called: {model} is a reasoning model and takes no Temperature or "
            "Top P; clear them and send again.",
            permanent=True,
        )
    ]
    assert route.call_count == 0


@respx.mock
async def test_openai_reasoning_model_temperature_one_is_its_default_and_not_sent() -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))
    params = OpenAI.clean_params({"temperature": 1, "max_tokens": 2000})

    assert await collect(OpenAI(), chat("o4-mini", params=params)) == ANSWER
    assert sent_json(route.calls.last.request) == {
        "model": "o4-mini",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 2000,
    }


def test_openai_check_params_names_what_each_model_refuses() -> None:
    OpenAI.check_params("gpt-5-chat-latest", {"temperature": 0.3})  # not a reasoning model
    OpenAI.check_params("gpt-5.1", {"temperature": 0.3})  # unknown: left to the API
    OpenAI.check_params("gpt-5-nano", {"reasoning_effort": "minimal"})
    with pytest.raises(ParamError) as error:
        OpenAI.check_params("gpt-5", {"top_p": 0.5})
    assert str(error.value) == (
        "gpt-5 is a reasoning model and takes no Top P; clear it and send again."
    )
    with pytest.raises(ParamError) as error:
        OpenAI.check_params("o3-mini", {"reasoning_effort": "minimal"})
    assert str(error.value) == "o3-mini takes Reasoning effort low, medium or high, not minimal."
    with pytest.raises(ParamError) as error:
        OpenAI.check_params("gpt-4o", {"reasoning_effort": "low"})
    assert str(error.value) == "gpt-4o is not a reasoning model; clear Reasoning effort."


def test_openai_parameters_and_capabilities() -> None:
    names = [p.name for p in OpenAI.params]
    assert names == [
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "reasoning_effort",
    ]
    effort = OpenAI.params[-1]
    assert effort.choices == ("minimal", "low", "medium", "high")
    assert effort.description
    with pytest.raises(ParamError, match="Reasoning effort must be one of minimal, low"):
        OpenAI.clean_params({"reasoning_effort": "max"})
    assert OpenAI.supports_tools and OpenAI.supports_images
    assert OpenAI.key_env == "OPENAI_API_KEY"
    assert OpenAI.extra_credentials == {
        "organization": "OPENAI_ORG_ID",
        "project": "OPENAI_PROJECT_ID",
    }
    assert OpenAI.optional_credentials == {"organization", "project"}


@respx.mock
async def test_openai_text_only_parts_are_sent_as_a_string() -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))

    await collect(OpenAI(), chat("gpt-4o", Message("user", (TextPart("Hi "), TextPart("there")))))

    assert sent_json(route.calls.last.request)["messages"] == [
        {"role": "user", "content": "Hi there"}
    ]


@respx.mock
async def test_openai_connection_cut_inside_tool_arguments_yields_no_half_call() -> None:
    data = recorded("openai", "tool_call")
    route = respx.post(OPENAI_URL).mock(
        side_effect=lambda request: sse(cut_before(data, b'ty\\": \\"Par'))
    )

    events = await collect(OpenAI(), chat("gpt-4.1"))

    # Nothing was shown before the cut, so it is retried like a failed connection.
    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.permanent) == (ErrorKind.NETWORK, False)
    assert failure.message.startswith("Could not reach OpenAI (ReadError) — retried 3 times")
    assert route.call_count == 4


@respx.mock
async def test_tool_call_fragments_without_index_are_joined_by_id() -> None:
    def chunk(delta: str, finish: str = "null") -> bytes:
        return (
            f'data: {{"choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}\n\n'
        ).encode()

    stream = (
        chunk('{"tool_calls":[{"id":"call_a","function":{"name":"get_weather","arguments":""}}]}')
        + chunk('{"tool_calls":[{"function":{"arguments":"{\\"city\\":"}}]}')
        + chunk('{"tool_calls":[{"function":{"arguments":"\\"Rome\\"}"}}]}')
        + chunk('{"tool_calls":[{"id":"call_b","function":{"name":"get_time","arguments":"{}"}}]}')
        + chunk("{}", '"tool_calls"')
        + b"data: [DONE]\n\n"
    )
    respx.post("https://gateway.example/v1/chat/completions").mock(return_value=sse(stream))
    request = chat("any", base_url="https://gateway.example/v1")

    assert await collect(OpenAICompatible(), request) == [
        ToolCall("call_a", "get_weather", '{"city":"Rome"}'),
        ToolCall("call_b", "get_time", "{}"),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_openai_out_of_credit_429_is_not_retried() -> None:
    route = respx.post(OPENAI_URL).mock(
        return_value=error_body(
            429,
            {
                "error": {
                    "message": "You exceeded your current quota, please check your plan and "
                    "billing details.",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
        )
    )

    events = await collect(OpenAI(), chat("gpt-5-mini"))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Out of credit at OpenAI (429): You exceeded your current quota, please check your "
            "plan and billing details.",
            permanent=True,
            status=429,
        )
    ]
    assert route.call_count == 1


@respx.mock
async def test_openai_stream_of_nothing_but_garbage_is_not_an_answer() -> None:
    respx.post(OPENAI_URL).mock(
        side_effect=lambda request: sse(b"data: {not json\n\ndata: <html>\n\ndata: [DONE]\n\n")
    )

    events = await collect(OpenAI(), chat("gpt-4o-mini"))

    assert len(events) == 1
    assert isinstance(events[0], Failure)
    assert events[0].kind is ErrorKind.NETWORK
    assert events[0].message.startswith("OpenAI closed the stream without an answer")


@respx.mock
async def test_closing_open_stream_early_closes_the_http_response() -> None:
    body = Replay(pieces(recorded("openai", "answer"), size=16))
    respx.post(OPENAI_URL).mock(return_value=sse(body))

    async with httpx.AsyncClient() as client:
        events = OpenAI().open_stream(client, chat("gpt-5-mini"))
        await anext(events)
        await events.aclose()  # type: ignore[attr-defined]

        assert body.closed


# --------------------------------------------------------------------------- DeepSeek


@respx.mock
async def test_deepseek_reasoning_then_answer_through_keep_alives() -> None:
    route = respx.post(DEEPSEEK_URL).mock(return_value=sse(recorded("deepseek", "reasoner")))
    request = chat(
        "deepseek-reasoner",
        Message("system", "Answer in one line."),
        Message("user", "2+2?"),
        params=DeepSeek.clean_params({"max_tokens": 512, "top_p": 0.9, "frequency_penalty": 0.5}),
    )

    events = await collect(DeepSeek(), request)

    assert events == [
        ReasoningDelta("The user asks"),
        ReasoningDelta(" for 2+2."),
        TextDelta("2 + 2"),
        TextDelta(" = 4"),
        Usage(input_tokens=13, output_tokens=47, reasoning_tokens=39),
        Finish("stop"),
    ]
    sent = route.calls.last.request
    assert str(sent.url) == DEEPSEEK_URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(sent) == {
        "model": "deepseek-reasoner",
        "messages": [
            {"role": "system", "content": "Answer in one line."},
            {"role": "user", "content": "2+2?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 512,
        "top_p": 0.9,
        "frequency_penalty": 0.5,
    }


def test_deepseek_has_no_seed_parameter() -> None:
    with pytest.raises(ParamError, match="Unknown parameter: seed"):
        DeepSeek.clean_params({"seed": 1})


@respx.mock
async def test_deepseek_insufficient_system_resource_is_kept_as_the_reason() -> None:
    respx.post(DEEPSEEK_URL).mock(return_value=sse(recorded("deepseek", "insufficient_resource")))

    events = await collect(DeepSeek(), chat("deepseek-chat"))

    assert events == [TextDelta("Let me"), Finish("insufficient_system_resource")]


@respx.mock
async def test_deepseek_402_is_a_billing_problem() -> None:
    respx.post(DEEPSEEK_URL).mock(
        return_value=error_body(
            402,
            {
                "error": {
                    "message": "Insufficient Balance",
                    "type": "unknown_error",
                    "param": None,
                    "code": "invalid_request_error",
                }
            },
        )
    )

    events = await collect(DeepSeek(), chat("deepseek-chat"))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "DeepSeek refused the request: billing or credit problem (402): Insufficient Balance",
            permanent=True,
            status=402,
        )
    ]


@respx.mock
async def test_deepseek_thinking_switch_streams_reasoning_first_through_keep_alives() -> None:
    route = respx.post(DEEPSEEK_URL).mock(return_value=sse(recorded("deepseek", "thinking")))
    request = chat(
        "deepseek-chat",
        Message("user", "How many primes below 10?"),
        params=DeepSeek.clean_params({"thinking": "on", "max_tokens": 1024}),
    )

    events = await collect(DeepSeek(), request)

    assert events == [
        ReasoningDelta("Primes below 10:"),
        ReasoningDelta(" 2, 3, 5, 7."),
        TextDelta("There are four"),
        TextDelta("."),
        Usage(input_tokens=15, output_tokens=58, reasoning_tokens=52),
        Finish("stop"),
    ]
    assert sent_json(route.calls.last.request) == {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "How many primes below 10?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "thinking": {"type": "enabled"},
        "max_tokens": 1024,
    }


@respx.mock
async def test_deepseek_thinking_off_is_sent_as_disabled() -> None:
    route = respx.post(DEEPSEEK_URL).mock(return_value=sse(recorded("deepseek", "malformed")))

    await collect(DeepSeek(), chat("deepseek-chat", params={"thinking": False}))

    assert sent_json(route.calls.last.request)["thinking"] == {"type": "disabled"}


@respx.mock
async def test_deepseek_reasoner_always_thinks() -> None:
    route = respx.post(DEEPSEEK_URL).mock(return_value=sse(recorded("deepseek", "reasoner")))

    await collect(DeepSeek(), chat("deepseek-reasoner", params={"thinking": True}))
    refused = await collect(DeepSeek(), chat("deepseek-reasoner", params={"thinking": False}))

    assert "thinking" not in sent_json(route.calls.last.request)
    assert route.call_count == 1
    assert refused == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "DeepSeek was not called: deepseek-reasoner always thinks; turn Thinking on or "
            "pick deepseek-chat.",
            permanent=True,
        )
    ]


@respx.mock
async def test_deepseek_tool_call_with_usage_on_the_finish_chunk() -> None:
    route = respx.post(DEEPSEEK_URL).mock(return_value=sse(recorded("deepseek", "tool_call")))

    events = await collect(DeepSeek(), with_tools(chat("deepseek-chat"), WEATHER))

    assert events == [
        ToolCall(
            "call_0_8f3d2a1b-6c4e-4f7a-9b2d-1e5c8a7f3b60",
            "get_weather",
            '{"city": "Hangzhou"}',
        ),
        Usage(input_tokens=164, output_tokens=21, reasoning_tokens=None),
        Finish("tool_calls"),
    ]
    assert sent_json(route.calls.last.request) == {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [WEATHER_SENT],
    }


# --------------------------------------------------------------------------- xAI


@respx.mock
async def test_xai_reasoning_tokens_outside_completion_are_added_to_output() -> None:
    route = respx.post("https://api.x.ai/v1/chat/completions").mock(
        return_value=sse(recorded("xai", "reasoning"))
    )
    request = chat(
        "grok-3-mini",
        params=XAI.clean_params({"reasoning_effort": "high", "max_tokens": 1000}),
    )

    events = await collect(XAI(), request)

    assert events == [
        ReasoningDelta("Count"),
        ReasoningDelta(" the r's."),
        TextDelta("There are"),
        TextDelta(" three."),
        Usage(input_tokens=18, output_tokens=254, reasoning_tokens=250),
        Finish("stop"),
    ]
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(sent) == {
        "model": "grok-3-mini",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "reasoning_effort": "high",
        "max_tokens": 1000,
    }


def test_xai_reasoning_effort_is_low_or_high() -> None:
    with pytest.raises(ParamError, match="Reasoning effort must be one of low, high."):
        XAI.clean_params({"reasoning_effort": "medium"})


XAI_URL = "https://api.x.ai/v1/chat/completions"


@respx.mock
async def test_xai_request_with_tools_and_images_is_exact() -> None:
    route = respx.post(XAI_URL).mock(return_value=sse(recorded("xai", "tool_call_empty_finish")))
    request = chat(
        "grok-4",
        Message("system", "Use tools."),
        PICTURES,
        params=XAI.clean_params({"temperature": 0.7, "max_tokens": 500, "seed": 11}),
    )

    events = await collect(XAI(), with_tools(request, WEATHER))

    assert events[0] == ToolCall("call_41236794", "search_docs", '{"query":"httpx streaming"}')
    sent = route.calls.last.request
    assert str(sent.url) == XAI_URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(sent) == {
        "model": "grok-4",
        "messages": [{"role": "system", "content": "Use tools."}, PICTURES_SENT],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [WEATHER_SENT],
        "temperature": 0.7,
        "max_tokens": 500,
        "seed": 11,
    }


@respx.mock
async def test_xai_reasoning_effort_is_refused_for_models_that_reject_it() -> None:
    route = respx.post(XAI_URL).mock(return_value=sse(recorded("xai", "reasoning")))
    request = chat("grok-4", params=XAI.clean_params({"reasoning_effort": "low"}))

    events = await collect(XAI(), request)

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "xAI was not called: grok-4 decides for itself how long to think and takes no "
            "Reasoning effort; clear it and send again.",
            permanent=True,
        )
    ]
    assert route.call_count == 0
    for model in ("grok-4-0709", "grok-4-fast-reasoning", "grok-code-fast-1", "grok-3"):
        with pytest.raises(ParamError, match=f"^{model} decides for itself"):
            XAI.check_params(model, {"reasoning_effort": "high"})
    for model in ("grok-3-mini", "grok-3-mini-fast", "grok-4.3"):
        XAI.check_params(model, {"reasoning_effort": "high"})
    XAI.check_params("grok-4", {"temperature": 0.5})


@respx.mock
async def test_xai_other_400_stays_a_bad_request() -> None:
    respx.post(XAI_URL).mock(
        return_value=error_body(
            400,
            {
                "code": "Client specified an invalid argument",
                "error": "Argument not supported on this model: stop",
            },
        )
    )

    events = await collect(XAI(), chat("grok-4"))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "xAI refused the request (400): Argument not supported on this model: stop",
            permanent=True,
            status=400,
        )
    ]


# --------------------------------------------------------------------------- Qwen


@respx.mock
async def test_qwen_compatible_mode_data_lines_without_space() -> None:
    from providers.dashscope import QwenCompatible

    url = "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions"
    route = respx.post(url).mock(return_value=sse(recorded("qwen", "answer")))
    request = chat(
        "qwen-plus",
        Message("user", "你好"),
        params=QwenCompatible.clean_params({"enable_thinking": "on", "seed": 3}),
    )

    events = await collect(QwenCompatible(), request)

    assert events == [
        ReasoningDelta("Greet back."),
        TextDelta("你好"),
        TextDelta("！有什么可以帮你？"),
        Usage(input_tokens=11, output_tokens=25, reasoning_tokens=14),
        Finish("stop"),
    ]
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(sent) == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "你好"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "enable_thinking": True,
        "seed": 3,
    }


# --------------------------------------------------------------------------- local servers


@respx.mock
async def test_ollama_reasoning_field_and_no_key_means_no_authorization() -> None:
    route = respx.post("http://127.0.0.1:11434/v1/chat/completions").mock(
        return_value=sse(recorded("ollama", "reasoning"))
    )

    events = await collect(OllamaOpenAI(), chat("qwen3:0.6b", key=""))

    assert events == [
        ReasoningDelta("Simple"),
        ReasoningDelta(" greeting."),
        TextDelta("Hi"),
        TextDelta(" there!"),
        Usage(input_tokens=12, output_tokens=9, reasoning_tokens=None),
        Finish("stop"),
    ]
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_llama_cpp_stream_closing_after_finish_without_done_is_complete() -> None:
    route = respx.post("http://127.0.0.1:8081/v1/chat/completions").mock(
        return_value=sse(recorded("local", "no_done"))
    )

    events = await collect(LlamaCpp(), chat("SmolLM2-135M-Instruct", key=""))

    assert events == [TextDelta("Hello"), TextDelta("!"), Finish("stop")]
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_ollama_tool_call_and_inline_image() -> None:
    route = respx.post("http://127.0.0.1:11434/v1/chat/completions").mock(
        return_value=sse(recorded("ollama", "tool_call"))
    )
    image = Message("user", (TextPart("Where?"), ImagePart(data="R0lGOD", mime_type="image/gif")))

    events = await collect(OllamaOpenAI(), with_tools(chat("qwen3:0.6b", image, key=""), WEATHER))

    assert events == [
        ToolCall("call_h4x8q2lm", "get_weather", '{"city":"Oslo"}'),
        Usage(input_tokens=141, output_tokens=22, reasoning_tokens=None),
        Finish("tool_calls"),
    ]
    assert sent_json(route.calls.last.request) == {
        "model": "qwen3:0.6b",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Where?"},
                    {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGOD"}},
                ],
            }
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [WEATHER_SENT],
    }


@respx.mock
async def test_ollama_cannot_fetch_an_image_by_url() -> None:
    route = respx.post("http://127.0.0.1:11434/v1/chat/completions")
    signed = "https://bucket.example/cat.png?X-Amz-Signature=abc123secret"
    image = Message("user", (TextPart("What?"), ImagePart(url=signed)))

    events = await collect(OllamaOpenAI(), chat("llava", image, key=""))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Ollama cannot fetch an image from a web address; attach the image as a file.",
            permanent=True,
        )
    ]
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("attachment", "sentence"),
    [
        ({"tools": (WEATHER,)}, "Local cannot call tools; remove them from the turn."),
        (
            {"messages": (PICTURES,)},
            "Local cannot take images; remove them from the turn.",
        ),
    ],
)
@respx.mock
async def test_llama_cpp_refuses_tools_and_images_before_the_call(
    attachment: dict[str, Any], sentence: str
) -> None:
    route = respx.post("http://127.0.0.1:8081/v1/chat/completions")
    request = dataclasses.replace(chat("smollm2", key=""), **attachment)

    events = await collect(LlamaCpp(), request)

    assert events == [Failure(ErrorKind.BAD_REQUEST, sentence, permanent=True)]
    assert route.call_count == 0


def test_capabilities_of_the_openai_style_providers() -> None:
    assert (LlamaCpp.supports_tools, LlamaCpp.supports_images) == (False, False)
    for cls in (OpenAI, XAI, DeepSeek, OllamaOpenAI, OpenAICompatible):
        assert cls.supports_tools, cls
        assert cls.supports_images, cls
    assert [cls for cls in (OpenAI, XAI, DeepSeek, OllamaOpenAI) if not cls.image_urls] == [
        OllamaOpenAI
    ]
    assert (XAI.key_env, DeepSeek.key_env) == ("XAI_API_KEY", "DEEPSEEK_API_KEY")
    assert [p.name for p in DeepSeek.params][-1] == "thinking"
    assert XAI.params[-1].choices == ("low", "high")


async def test_openai_compatible_without_base_url_fails_permanently() -> None:
    events = await collect(OpenAICompatible(), chat("any-model", key=""))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "No base URL configured for OpenAI-compatible server.",
            permanent=True,
        )
    ]


@respx.mock
async def test_openai_compatible_uses_the_given_base_url_and_key() -> None:
    route = respx.post("https://gateway.example/llm/v1/chat/completions").mock(
        return_value=sse(recorded("openai", "answer"))
    )
    request = chat("gpt-oss-20b", base_url="https://gateway.example/llm/v1/")

    assert await collect(OpenAICompatible(), request) == ANSWER
    assert route.calls.last.request.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(route.calls.last.request)["model"] == "gpt-oss-20b"


def test_every_registered_openai_style_provider_resolves() -> None:
    expected = {
        "openai": OpenAI,
        "openai_compatible": OpenAICompatible,
        "local": LlamaCpp,
        "deepseek": DeepSeek,
        "xai": XAI,
        "ollama": OllamaOpenAI,
    }
    for name, cls in expected.items():
        assert provider_class(name) is cls
        assert cls.name == name
        assert name in PROVIDERS


@respx.mock
async def test_unexpected_json_shapes_are_ignored_not_crashed_on() -> None:
    odd = (
        b'data: {"choices": "none"}\n\n'
        b'data: {"choices": [{"index": 0, "delta": "text"}], "usage": 3}\n\n'
        b'data: {"choices": [7, {"index": 0, "delta": {"tool_calls": "x", "content": 5}}]}\n\n'
        b"data: [1, 2]\n\n"
    )
    respx.post(OPENAI_URL).mock(return_value=sse(odd + recorded("openai", "answer")))

    assert await collect(OpenAI(), chat("gpt-5-mini")) == ANSWER
