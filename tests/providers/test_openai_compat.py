"""The OpenAI Chat Completions family, replayed from recorded streams."""

from __future__ import annotations

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
    Usage,
)
from providers.openai_compat import (
    XAI,
    DeepSeek,
    LlamaCpp,
    OllamaOpenAI,
    OpenAI,
    OpenAICompatible,
    QwenCompatible,
)
from providers.registry import PROVIDERS, provider_class
from tests.providers.replay import (
    KEY,
    FakeSleep,
    Replay,
    chat,
    collect,
    cut_before,
    error_body,
    head,
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

RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for gpt-5-mini on requests per min (RPM): Limit 3.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


# --------------------------------------------------------------------------- OpenAI


@respx.mock
async def test_openai_answer_with_usage_comes_last() -> None:
    respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))

    events = await collect(OpenAI(), chat("gpt-5-mini"))

    assert events == ANSWER


@respx.mock
async def test_openai_request_is_exactly_the_chat_completions_body() -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))
    request = chat(
        "gpt-5-mini",
        Message("system", "Be brief."),
        Message("user", "What is this?"),
        Message("assistant", "A picture."),
        Message(
            "user",
            (
                TextPart("And this one?"),
                ImagePart(data="iVBORw0KGgo=", mime_type="image/png"),
                ImagePart(url="https://example.com/cat.jpg"),
            ),
        ),
        params=OpenAI.clean_params(
            {
                "temperature": "0.2",
                "max_tokens": "300",
                "stop": "END\nSTOP",
                "seed": 7,
                "reasoning_effort": "low",
            }
        ),
    )

    await collect(OpenAI(), request)

    sent = route.calls.last.request
    assert str(sent.url) == OPENAI_URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(sent) == {
        "model": "gpt-5-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is this?"},
            {"role": "assistant", "content": "A picture."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And this one?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_completion_tokens": 300,
        "stop": ["END", "STOP"],
        "seed": 7,
        "reasoning_effort": "low",
    }


@respx.mock
async def test_openai_text_only_parts_are_sent_as_a_string() -> None:
    route = respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "answer")))

    await collect(OpenAI(), chat("gpt-4o", Message("user", (TextPart("Hi "), TextPart("there")))))

    assert sent_json(route.calls.last.request)["messages"] == [
        {"role": "user", "content": "Hi there"}
    ]


@respx.mock
async def test_openai_tool_calls_are_assembled_from_fragments() -> None:
    respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "tool_call")))

    events = await collect(OpenAI(), chat("gpt-4.1"))

    assert events == [
        ToolCall("call_Wl3uVq8kJ2", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_8ZfQnR0xHc", "get_time", '{"tz": "Europe/Paris"}'),
        Usage(input_tokens=84, output_tokens=46, reasoning_tokens=0),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_openai_bad_key_is_a_permanent_auth_failure_without_the_key() -> None:
    route = respx.post(OPENAI_URL).mock(
        return_value=error_body(
            401,
            {
                "error": {
                    "message": "Incorrect API key provided: sk-test-****************0c1e. "
                    "You can find your API key at https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    )
    sleep = FakeSleep()

    events = await collect(OpenAI(), chat("gpt-5-mini"), sleep)

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "OpenAI rejected the API key (401): Incorrect API key provided: [redacted]. "
            "You can find your API key at https://platform.openai.com/account/api-keys.",
            permanent=True,
            status=401,
        )
    ]
    assert route.call_count == 1
    assert sleep.delays == []


@respx.mock
async def test_openai_429_waits_as_told_then_streams() -> None:
    route = respx.post(OPENAI_URL).mock(
        side_effect=[
            error_body(429, RATE_LIMITED, {"retry-after": "2"}),
            error_body(429, RATE_LIMITED, {"retry-after-ms": "1500", "retry-after": "2"}),
            sse(recorded("openai", "answer")),
        ]
    )
    sleep = FakeSleep()

    events = await collect(OpenAI(), chat("gpt-5-mini"), sleep)

    assert events == ANSWER
    assert sleep.delays == [2.0, 1.5]
    assert route.call_count == 3


@respx.mock
async def test_openai_429_every_time_gives_up_after_three_retries() -> None:
    route = respx.post(OPENAI_URL).mock(
        return_value=error_body(429, RATE_LIMITED, {"retry-after": "2"})
    )
    sleep = FakeSleep()

    events = await collect(OpenAI(), chat("gpt-5-mini"), sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by OpenAI (429): Rate limit reached for gpt-5-mini on requests per "
            "min (RPM): Limit 3. — retried 3 times over 6 s",
            permanent=False,
            status=429,
        )
    ]
    assert route.call_count == 4
    assert sleep.delays == [2.0, 2.0, 2.0]


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
async def test_openai_error_inside_a_200_stream_is_retried_then_reported() -> None:
    route = respx.post(OPENAI_URL).mock(
        side_effect=lambda request: sse(recorded("openai", "error_in_stream"))
    )

    events = await collect(OpenAI(), chat("gpt-5-mini"))

    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.kind is ErrorKind.UPSTREAM
    assert not failure.permanent
    assert failure.message.startswith(
        "OpenAI reported an error (server_error): The server had an error while processing "
        "your request. Sorry about that! — retried 3 times over "
    )
    assert route.call_count == 4


@respx.mock
async def test_openai_error_inside_a_200_stream_then_success() -> None:
    respx.post(OPENAI_URL).mock(
        side_effect=[sse(recorded("openai", "error_in_stream")), sse(recorded("openai", "answer"))]
    )

    assert await collect(OpenAI(), chat("gpt-5-mini")) == ANSWER


@respx.mock
async def test_openai_malformed_line_is_skipped_and_the_rest_parsed() -> None:
    respx.post(OPENAI_URL).mock(return_value=sse(recorded("openai", "malformed")))

    events = await collect(OpenAI(), chat("gpt-4o-mini"))

    assert events == [
        TextDelta("One"),
        TextDelta(" three"),
        Usage(input_tokens=9, output_tokens=3, reasoning_tokens=None),
        Finish("length"),
    ]


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
async def test_openai_connection_cut_mid_answer_keeps_the_text_and_is_not_retried() -> None:
    data = recorded("openai", "answer")
    route = respx.post(OPENAI_URL).mock(return_value=sse(cut_before(data, b'" capital')))

    events = await collect(OpenAI(), chat("gpt-5-mini"))

    assert events == [
        TextDelta("Paris"),
        TextDelta(" is the"),
        Failure(ErrorKind.NETWORK, "The connection to OpenAI was cut mid-answer", False),
    ]
    assert route.call_count == 1


@respx.mock
async def test_openai_stream_ending_without_finish_reason_counts_as_cut() -> None:
    data = recorded("openai", "answer")
    respx.post(OPENAI_URL).mock(return_value=sse(head(data, b'" capital')))

    events = await collect(OpenAI(), chat("gpt-5-mini"))

    assert events[-1] == Failure(
        ErrorKind.NETWORK, "The connection to OpenAI was cut mid-answer", False
    )
    assert events[:-1] == [TextDelta("Paris"), TextDelta(" is the")]


@respx.mock
async def test_closing_the_stream_early_closes_the_http_response() -> None:
    body = Replay(pieces(recorded("openai", "answer"), size=16))
    respx.post(OPENAI_URL).mock(return_value=sse(body))

    async with httpx.AsyncClient() as client:
        stream = OpenAI().stream(client, chat("gpt-5-mini"))
        first = await anext(stream)
        await stream.aclose()
        closed_at_once = body.closed

    assert first == TextDelta("Paris")
    assert closed_at_once
    assert body.read < len(body.chunks)


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
async def test_deepseek_error_after_the_first_token_is_not_retried() -> None:
    data = recorded("deepseek", "reasoner")
    error = (
        b'data: {"error":{"message":"Rate limit reached, slow down","type":"rate_limit_error",'
        b'"param":null,"code":"rate_limit_exceeded"}}\n\n'
    )
    route = respx.post(DEEPSEEK_URL).mock(return_value=sse(head(data, b'" = 4"') + error))

    events = await collect(DeepSeek(), chat("deepseek-reasoner"))

    assert events == [
        ReasoningDelta("The user asks"),
        ReasoningDelta(" for 2+2."),
        TextDelta("2 + 2"),
        Failure(
            ErrorKind.RATE_LIMIT,
            "DeepSeek reported an error (rate_limit_error): Rate limit reached, slow down",
            permanent=False,
        ),
    ]
    assert route.call_count == 1


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


@respx.mock
async def test_xai_tool_call_with_empty_finish_reason_finishes_as_tool_calls() -> None:
    respx.post("https://api.x.ai/v1/chat/completions").mock(
        return_value=sse(recorded("xai", "tool_call_empty_finish"))
    )

    events = await collect(XAI(), chat("grok-4"))

    assert events == [
        ToolCall("call_41236794", "search_docs", '{"query":"httpx streaming"}'),
        Usage(input_tokens=310, output_tokens=26, reasoning_tokens=0),
        Finish("tool_calls"),
    ]


# --------------------------------------------------------------------------- Qwen


@respx.mock
async def test_qwen_compatible_mode_data_lines_without_space() -> None:
    url = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"
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
        "qwen": QwenCompatible,
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
