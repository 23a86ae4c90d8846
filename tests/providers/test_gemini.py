"""What is Google Gemini's own (v1beta streamGenerateContent): the camel-case request, thinking
config, thoughts and parallel calls, the retry delay in a 429 body, blocked prompts, odd
shapes. The scenarios every adapter shares are in test_contract.py."""

from __future__ import annotations

import dataclasses

import pytest
import respx

from providers.base import (
    AudioPart,
    ErrorKind,
    Failure,
    Finish,
    ImagePart,
    Message,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
    VideoPart,
)
from providers.gemini import Gemini
from tests.providers.contract import GEMINI_ANSWER, GEMINI_EXHAUSTED
from tests.providers.replay import (
    KEY,
    FakeSleep,
    chat,
    collect,
    cut_before,
    error_body,
    recorded,
    sent_json,
    sse,
)

BASE = "https://generativelanguage.googleapis.com/v1beta/models"
URL = f"{BASE}/gemini-2.0-flash:streamGenerateContent?alt=sse"

# The answer and the 429 body are the contract table's (tests/providers/contract.py).
ANSWER = list(GEMINI_ANSWER.events)


def test_the_answer_recording_keeps_gemini_crlf_line_ends() -> None:
    # test_contract.py replays it: CRLF lines must read like LF ones.
    assert b"\r\n" in recorded("gemini", "answer")


UPLOADED = "https://generativelanguage.googleapis.com/v1beta/files/4k2m9x7q1w"
WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
# additionalProperties is JSON Schema that Gemini's OpenAPI-subset "parameters" refuses.
STRICT = ToolSpec(
    "get_local_time",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
)


@respx.mock
async def test_request_is_camel_case_with_system_instruction() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("gemini", "answer")))
    request = chat(
        "models/gemini-2.0-flash",
        Message("system", "Be funny."),
        Message("user", "Tell a joke."),
        Message("assistant", "Knock knock."),
        Message(
            "user",
            (
                TextPart("About this:"),
                ImagePart(data="/9j/4AAQSkZJRg==", mime_type="image/jpeg"),
                ImagePart(url="data:image/webp;base64,UklGRg=="),
                ImagePart(url=UPLOADED, mime_type="image/png"),
            ),
        ),
        params=Gemini.clean_params(
            {
                "temperature": 1.2,
                "top_p": 0.95,
                "top_k": 40,
                "max_tokens": 256,
                "stop": ["\n\n\n"],
                "seed": 42,
                "thinking_budget": 0,
            }
        ),
    )

    await collect(Gemini(), dataclasses.replace(request, tools=(WEATHER, STRICT)))

    sent = route.calls.last.request
    assert str(sent.url) == URL
    assert sent.headers["x-goog-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert "key=" not in str(sent.url)
    assert sent_json(sent) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Tell a joke."}]},
            {"role": "model", "parts": [{"text": "Knock knock."}]},
            {
                "role": "user",
                "parts": [
                    {"text": "About this:"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                    {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                    {"fileData": {"mimeType": "image/png", "fileUri": UPLOADED}},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be funny."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather for a city.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string", "description": "City name"},
                                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                            },
                            "required": ["city"],
                        },
                    },
                    {
                        "name": "get_local_time",
                        "parametersJsonSchema": {
                            "type": "object",
                            "properties": {},
                            "additionalProperties": False,
                        },
                    },
                ]
            }
        ],
        "generationConfig": {
            "temperature": 1.2,
            "topP": 0.95,
            "topK": 40,
            "maxOutputTokens": 256,
            "stopSequences": ["\n\n\n"],
            "seed": 42,
            "thinkingConfig": {"thinkingBudget": 0},
        },
    }


@respx.mock
async def test_image_by_web_address_is_refused_before_the_call() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("gemini", "answer")))
    signed = "https://storage.example/farm.png?X-Goog-Signature=5f1e9c0a7b"
    image = Message("user", (TextPart("What is this?"), ImagePart(url=signed)))

    events = await collect(Gemini(), chat("gemini-2.0-flash", image))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Google Gemini cannot fetch an image from a web address; attach the image as a file.",
            permanent=True,
        )
    ]
    assert route.call_count == 0


@respx.mock
async def test_a_youtube_page_or_a_files_api_file_goes_as_file_data_and_its_tokens_are_read() -> (
    None
):
    url = f"{BASE}/gemini-2.5-flash:streamGenerateContent?alt=sse"
    route = respx.post(url).mock(return_value=sse(recorded("gemini", "video_and_audio")))
    youtube = "https://www.youtube.com/watch?v=9hE5-98ZeCg"
    short = "https://youtu.be/9hE5-98ZeCg"
    recording = "https://generativelanguage.googleapis.com/v1beta/files/t9x2c4v8b1n3"
    media = Message(
        "user",
        (
            VideoPart(url=youtube),
            VideoPart(url=short),
            AudioPart(url=recording),
            TextPart("What happens, and what is said?"),
        ),
    )

    events = await collect(Gemini(), chat("gemini-2.5-flash", media))

    assert sent_json(route.calls.last.request)["contents"] == [
        {
            "role": "user",
            "parts": [
                {"fileData": {"fileUri": youtube}},
                {"fileData": {"fileUri": short}},
                {"fileData": {"fileUri": recording}},
                {"text": "What happens, and what is said?"},
            ],
        }
    ]
    # promptTokensDetails by modality: the video's pictures, and its sound as AUDIO.
    assert events[-2:] == [
        Usage(
            input_tokens=1746,
            output_tokens=14,
            reasoning_tokens=None,
            audio_input_tokens=192,
            video_input_tokens=1548,
        ),
        Finish("stop"),
    ]


@pytest.mark.parametrize(
    "address",
    [
        "https://youtube.com.example.net/watch?v=9hE5-98ZeCg",
        "http://www.youtube.com/watch?v=9hE5-98ZeCg",
        "https://media.example.com/files/clip.mp4",
    ],
)
@respx.mock
async def test_a_video_at_any_other_address_is_refused_before_the_call(address: str) -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("gemini", "answer")))
    media = Message("user", (TextPart("What happens?"), VideoPart(url=address)))

    events = await collect(Gemini(), chat("gemini-2.0-flash", media))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Google Gemini reads a video by web address only from YouTube or its own Files "
            "API; attach the video as a file.",
            permanent=True,
        )
    ]
    assert route.call_count == 0


@respx.mock
async def test_a_recording_in_a_format_gemini_does_not_list_is_refused_before_the_call() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("gemini", "answer")))
    m4a = AudioPart(data="AAAAHGZ0eXBNNEEg", mime_type="audio/mp4")

    events = await collect(Gemini(), chat("gemini-2.0-flash", Message("user", (m4a,))))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Google Gemini takes recordings as FLAC, MP3, OGG or WAV only.",
            permanent=True,
        )
    ]
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("values", "thinking"),
    [
        ({"thinking_budget": -1}, {"thinkingBudget": -1, "includeThoughts": True}),
        (
            {"thinking_budget": 2048, "include_thoughts": "off"},
            {"thinkingBudget": 2048, "includeThoughts": False},
        ),
        ({"include_thoughts": "on"}, {"includeThoughts": True}),
    ],
)
@respx.mock
async def test_thinking_config(values: dict[str, object], thinking: dict[str, object]) -> None:
    url = f"{BASE}/gemini-2.5-pro:streamGenerateContent?alt=sse"
    route = respx.post(url).mock(return_value=sse(recorded("gemini", "thoughts")))

    await collect(Gemini(), chat("gemini-2.5-pro", params=Gemini.clean_params(values)))

    assert sent_json(route.calls.last.request)["generationConfig"] == {"thinkingConfig": thinking}


def test_gemini_declares_tools_images_and_its_extras() -> None:
    assert Gemini.supports_tools and Gemini.supports_images
    assert Gemini.image_urls is False
    assert Gemini.key_env == "GEMINI_API_KEY"
    by_name = {p.name: p for p in Gemini.params}
    assert list(by_name) == [
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop",
        "seed",
        "thinking_budget",
        "include_thoughts",
    ]
    assert (by_name["thinking_budget"].minimum, by_name["thinking_budget"].maximum) == (
        -1,
        32768,
    )
    assert by_name["top_k"].minimum == 1
    assert all(p.description for p in Gemini.params)
    assert "candidate" not in " ".join(by_name)


@respx.mock
async def test_request_without_system_prompt_or_params_has_only_contents() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("gemini", "answer")))

    await collect(Gemini(), chat("gemini-2.0-flash"))

    assert sent_json(route.calls.last.request) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]
    }


@respx.mock
async def test_thought_parts_are_reasoning_and_thought_tokens_count_as_output() -> None:
    url = f"{BASE}/gemini-2.5-flash:streamGenerateContent?alt=sse"
    route = respx.post(url).mock(return_value=sse(recorded("gemini", "thoughts")))
    request = chat("gemini-2.5-flash", params=Gemini.clean_params({"thinking_budget": 1024}))

    events = await collect(Gemini(), request)

    assert events == [
        ReasoningDelta("**Weighing the question**\n\nThe user wants a prime."),
        TextDelta("The smallest prime is 2."),
        Usage(input_tokens=11, output_tokens=127, reasoning_tokens=120),
        Finish("stop"),
    ]
    assert sent_json(route.calls.last.request)["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}
    }


@respx.mock
async def test_thought_then_parallel_function_calls_with_signatures() -> None:
    url = f"{BASE}/gemini-2.5-flash:streamGenerateContent?alt=sse"
    respx.post(url).mock(return_value=sse(recorded("gemini", "function_calls")))
    request = chat("gemini-2.5-flash", params=Gemini.clean_params({"include_thoughts": True}))

    events = await collect(Gemini(), dataclasses.replace(request, tools=(WEATHER, STRICT)))

    assert events == [
        ReasoningDelta("**Planning the lookups**\n\nWeather first, then the time."),
        ToolCall("call_1", "get_weather", '{"city": "Lyon", "unit": "celsius"}'),
        ToolCall("call_2", "get_local_time", "{}"),
        Usage(input_tokens=96, output_tokens=78, reasoning_tokens=54),
        Finish("tool_calls"),
    ]


@respx.mock
async def test_connection_cut_before_the_function_calls() -> None:
    url = f"{BASE}/gemini-2.5-flash:streamGenerateContent?alt=sse"
    data = recorded("gemini", "function_calls")
    respx.post(url).mock(return_value=sse(cut_before(data, b"functionCall")))

    events = await collect(Gemini(), chat("gemini-2.5-flash"))

    assert events == [
        ReasoningDelta("**Planning the lookups**\n\nWeather first, then the time."),
        Failure(ErrorKind.NETWORK, "The connection to Google Gemini was cut mid-answer", False),
    ]


@respx.mock
async def test_blocked_prompt_is_a_permanent_content_filter_failure() -> None:
    route = respx.post(URL).mock(return_value=sse(recorded("gemini", "blocked")))

    events = await collect(Gemini(), chat("gemini-2.0-flash"))

    assert events == [
        Failure(
            ErrorKind.CONTENT_FILTER, "Google Gemini blocked the prompt (SAFETY)", permanent=True
        )
    ]
    assert route.call_count == 1


@respx.mock
async def test_invalid_key_400_is_an_auth_failure() -> None:
    respx.post(URL).mock(
        return_value=error_body(
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                }
            },
        )
    )

    events = await collect(Gemini(), chat("gemini-2.0-flash"))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Google Gemini rejected the API key (400): "
            "API key not valid. Please pass a valid API key.",
            permanent=True,
            status=400,
        )
    ]


@respx.mock
async def test_429_waits_for_the_retry_delay_in_the_body() -> None:
    respx.post(URL).mock(
        side_effect=[error_body(429, GEMINI_EXHAUSTED), sse(recorded("gemini", "answer"))]
    )
    sleep = FakeSleep()

    assert await collect(Gemini(), chat("gemini-2.0-flash"), sleep) == ANSWER
    assert sleep.delays == [17.0]


@respx.mock
async def test_429_every_time_gives_up_after_three_retries() -> None:
    route = respx.post(URL).mock(return_value=error_body(429, GEMINI_EXHAUSTED))
    sleep = FakeSleep()

    events = await collect(Gemini(), chat("gemini-2.0-flash"), sleep)

    assert events == [
        Failure(
            ErrorKind.RATE_LIMIT,
            "Rate limited by Google Gemini (429): You exceeded your current quota, please "
            "check your plan and billing details. — retried 3 times over 51 s",
            permanent=False,
            status=429,
        )
    ]
    assert route.call_count == 4
    assert sleep.delays == [17.0, 17.0, 17.0]


@respx.mock
async def test_unexpected_json_shapes_are_ignored_not_crashed_on() -> None:
    odd = (
        b'data: {"candidates": [5]}\n\n'
        b'data: {"candidates": [{"content": "text"}], "promptFeedback": "x"}\n\n'
        b'data: {"candidates": [{"content": {"parts": [1, {"text": 2}]}}]}\n\n'
        b"data: [1, 2]\n\n"
    )
    respx.post(URL).mock(return_value=sse(odd + recorded("gemini", "answer")))

    assert await collect(Gemini(), chat("gemini-2.0-flash")) == ANSWER
