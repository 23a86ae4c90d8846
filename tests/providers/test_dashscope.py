"""What is Alibaba DashScope's own, both ways in (compatible mode and the native protocol):
the request bytes, regions, cumulative text, the multimodal endpoint, its error codes. The
scenarios every adapter shares are in test_contract.py."""

from __future__ import annotations

import dataclasses

import pytest
import respx

from providers.base import (
    AudioPart,
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
    VideoPart,
)
from providers.dashscope import QwenCompatible, QwenNative, _Joined
from tests.providers.replay import (
    KEY,
    chat,
    collect,
    error_body,
    recorded,
    sent_json,
    sse,
)

COMPATIBLE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions"
NATIVE_URL = "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation"
VISION_URL = "https://dashscope.aliyuncs.com/api/v1/services/aigc/multimodal-generation/generation"

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
WEATHER_WIRE = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

NATIVE_ANSWER = [
    TextDelta("The capital"),
    TextDelta(" of Zhejiang is"),
    TextDelta(" Hangzhou."),
    Usage(input_tokens=22, output_tokens=8, reasoning_tokens=None),
    Finish("stop"),
]


def with_region(request: ChatRequest, region: str) -> ChatRequest:
    return dataclasses.replace(
        request, credentials=Credentials(api_key=KEY, extra={"region": region})
    )


# --------------------------------------------------------------------------- compatible mode


@respx.mock
async def test_compatible_thinking_answer_and_the_exact_request() -> None:
    route = respx.post(COMPATIBLE_URL).mock(
        return_value=sse(recorded("dashscope", "compatible_thinking"))
    )
    request = chat(
        "qwen-plus",
        Message("system", "Answer briefly."),
        Message("user", (TextPart("What is 2 + 2? Also, this:"), ImagePart(data="iVBORw0KGgo="))),
        params=QwenCompatible.clean_params(
            {"temperature": "0.7", "thinking_budget": "2048", "enable_search": "on", "seed": 5}
        ),
    )
    request = dataclasses.replace(request, tools=(WEATHER,))

    events = await collect(QwenCompatible(), request)

    assert events == [
        ReasoningDelta("Two plus two"),
        ReasoningDelta(" is four."),
        TextDelta("2 + 2"),
        TextDelta(" = 4."),
        Usage(input_tokens=18, output_tokens=31, reasoning_tokens=22),
        Finish("stop"),
    ]
    sent = route.calls.last.request
    assert str(sent.url) == COMPATIBLE_URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent_json(sent) == {
        "model": "qwen-plus",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is 2 + 2? Also, this:"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                ],
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [WEATHER_WIRE],
        "temperature": 0.7,
        "seed": 5,
        "enable_search": True,
        "thinking_budget": 2048,
        # A budget turns thinking on.
        "enable_thinking": True,
    }


@respx.mock
async def test_compatible_thinking_can_be_turned_off_explicitly() -> None:
    route = respx.post(COMPATIBLE_URL).mock(
        return_value=sse(recorded("dashscope", "compatible_thinking"))
    )
    params = QwenCompatible.clean_params({"enable_thinking": "off"})

    await collect(QwenCompatible(), chat("qwen3-32b", params=params))

    body = sent_json(route.calls.last.request)
    assert body["enable_thinking"] is False
    assert "thinking_budget" not in body


@respx.mock
async def test_compatible_blocked_input_is_a_content_filter_not_retried() -> None:
    route = respx.post(COMPATIBLE_URL).mock(
        return_value=error_body(
            400,
            {
                "error": {
                    "code": "data_inspection_failed",
                    "param": None,
                    "message": "Input data may contain inappropriate content.",
                    "type": "data_inspection_failed",
                },
                "id": "chatcmpl-6b0e3a1c-2f4d-9e8b-a7c6-5d4e3f2a1b0c",
            },
        )
    )

    events = await collect(QwenCompatible(), chat("qwen-plus"))

    assert events == [
        Failure(
            ErrorKind.CONTENT_FILTER,
            "Alibaba Qwen blocked the content (400, data_inspection_failed): "
            "Input data may contain inappropriate content.",
            permanent=True,
            status=400,
        )
    ]
    assert route.call_count == 1


# --------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("", "https://dashscope.aliyuncs.com"),
        ("Beijing", "https://dashscope.aliyuncs.com"),
        ("singapore", "https://dashscope-intl.aliyuncs.com"),
        ("intl", "https://dashscope-intl.aliyuncs.com"),
        ("US", "https://dashscope-us.aliyuncs.com"),
        ("us-virginia", "https://dashscope-us.aliyuncs.com"),
        ("finance", "https://dashscope-finance.aliyuncs.com"),
    ],
)
@respx.mock
async def test_region_picks_the_default_address_of_each_mode(region: str, host: str) -> None:
    compatible = respx.post(f"{host}/compatible-mode/v1/chat/completions").mock(
        return_value=sse(recorded("dashscope", "compatible_thinking"))
    )
    native = respx.post(f"{host}/api/v1/services/aigc/text-generation/generation").mock(
        return_value=sse(recorded("dashscope", "native_answer"))
    )

    assert (await collect(QwenCompatible(), with_region(chat("qwen-plus"), region)))[-1] == (
        Finish("stop")
    )
    assert await collect(QwenNative(), with_region(chat("qwen-plus"), region)) == NATIVE_ANSWER
    assert compatible.call_count == native.call_count == 1


@respx.mock
async def test_unknown_region_is_a_permanent_bad_request_and_nothing_is_sent() -> None:
    for provider in (QwenCompatible(), QwenNative()):
        events = await collect(provider, with_region(chat("qwen-plus"), "Mars"))

        assert events == [
            Failure(
                ErrorKind.BAD_REQUEST,
                f"{provider.display_name} has no region called 'Mars'; use one of beijing, "
                "singapore, us, finance (set DASHSCOPE_REGION or the key's region).",
                permanent=True,
            )
        ]
    assert not respx.calls


@respx.mock
async def test_a_given_base_url_wins_over_the_region() -> None:
    route = respx.post(
        "https://gateway.example/dashscope/api/v1/services/aigc/text-generation/generation"
    )
    route.mock(return_value=sse(recorded("dashscope", "native_answer")))
    request = dataclasses.replace(
        with_region(chat("qwen-plus"), "Mars"), base_url="https://gateway.example/dashscope/api/v1/"
    )

    assert await collect(QwenNative(), request) == NATIVE_ANSWER
    assert route.call_count == 1


def test_both_modes_declare_the_region_credential() -> None:
    assert QwenCompatible.extra_credentials == {"region": "DASHSCOPE_REGION"}
    assert QwenNative.extra_credentials == {"region": "DASHSCOPE_REGION"}
    assert QwenCompatible.key_env == QwenNative.key_env == "DASHSCOPE_API_KEY"
    # The region may be left unset (Beijing).
    assert QwenCompatible.optional_credentials == QwenNative.optional_credentials == {"region"}


# --------------------------------------------------------------------------- native protocol


@respx.mock
async def test_native_answer_and_the_exact_request() -> None:
    route = respx.post(NATIVE_URL).mock(return_value=sse(recorded("dashscope", "native_answer")))
    request = chat(
        "qwen-plus",
        Message("system", "You are a geography tutor."),
        Message("user", "Capital of Zhejiang?"),
        Message("assistant", "Let me think."),
        Message("user", (TextPart("Well?"),)),
        params=QwenNative.clean_params(
            {
                "top_p": 0.8,
                "top_k": 50,
                "repetition_penalty": 1.1,
                "stop": ["###"],
                "max_tokens": 99,
            }
        ),
    )

    events = await collect(QwenNative(), request)

    assert events == NATIVE_ANSWER
    sent = route.calls.last.request
    assert str(sent.url) == NATIVE_URL
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.headers["x-dashscope-sse"] == "enable"
    assert sent_json(sent) == {
        "model": "qwen-plus",
        "input": {
            "messages": [
                {"role": "system", "content": "You are a geography tutor."},
                {"role": "user", "content": "Capital of Zhejiang?"},
                {"role": "assistant", "content": "Let me think."},
                {"role": "user", "content": "Well?"},
            ]
        },
        "parameters": {
            "result_format": "message",
            "incremental_output": True,
            "top_p": 0.8,
            "top_k": 50,
            "repetition_penalty": 1.1,
            "stop": ["###"],
            "max_tokens": 99,
        },
    }


@respx.mock
async def test_native_thinking_streams_reasoning_then_the_answer() -> None:
    route = respx.post(NATIVE_URL).mock(return_value=sse(recorded("dashscope", "native_thinking")))
    request = chat(
        "qwen3-235b-a22b",
        Message("user", "17 × 3?"),
        params=QwenNative.clean_params(
            {"enable_thinking": True, "thinking_budget": 500, "enable_search": False}
        ),
    )

    events = await collect(QwenNative(), request)

    assert events == [
        ReasoningDelta("Seventeen times"),
        ReasoningDelta(" three is 51."),
        TextDelta("17 × 3 = 51"),
        Usage(input_tokens=16, output_tokens=16, reasoning_tokens=8),
        Finish("length"),
    ]
    assert sent_json(route.calls.last.request)["parameters"] == {
        "result_format": "message",
        "incremental_output": True,
        "enable_thinking": True,
        "thinking_budget": 500,
        "enable_search": False,
    }


@respx.mock
async def test_native_cumulative_text_is_turned_into_deltas() -> None:
    respx.post(NATIVE_URL).mock(return_value=sse(recorded("dashscope", "native_cumulative")))

    events = await collect(QwenNative(), chat("qwen-turbo"))

    assert events == [
        TextDelta("Spring"),
        TextDelta(" rain falls"),
        TextDelta(" softly"),
        Usage(input_tokens=12, output_tokens=4, reasoning_tokens=None),
        Finish("stop"),
    ]


def test_deltas_that_repeat_the_answer_so_far_are_kept_once_deltas_are_known() -> None:
    joined = _Joined()

    assert [joined.delta(t) for t in ("Ha", "!", " Ha", "Ha! Ha")] == ["Ha", "!", " Ha", "Ha! Ha"]

    cumulative = _Joined()
    assert [cumulative.delta(t) for t in ("A", "AB", "AB", "ABC")] == ["A", "B", "", "C"]


@respx.mock
async def test_native_tool_call_is_assembled_and_tools_are_sent() -> None:
    route = respx.post(NATIVE_URL).mock(return_value=sse(recorded("dashscope", "native_tool_call")))
    request = dataclasses.replace(chat("qwen-max", Message("user", "Weather?")), tools=(WEATHER,))

    events = await collect(QwenNative(), request)

    assert events == [
        ToolCall("call_c2a7e0d95b3f4e18", "get_weather", '{"city": "Hangzhou"}'),
        Usage(input_tokens=216, output_tokens=19, reasoning_tokens=None),
        Finish("tool_calls"),
    ]
    assert sent_json(route.calls.last.request)["parameters"]["tools"] == [WEATHER_WIRE]


@respx.mock
async def test_native_images_go_to_the_multimodal_endpoint() -> None:
    route = respx.post(VISION_URL).mock(return_value=sse(recorded("dashscope", "native_vision")))
    request = chat(
        "qwen-vl-max",
        Message("system", "Describe pictures."),
        Message(
            "user",
            (
                ImagePart(url="https://example.com/dog.jpg"),
                ImagePart(data="/9j/4AAQ", mime_type="image/jpeg"),
                TextPart("What is this?"),
            ),
        ),
    )

    events = await collect(QwenNative(), request)

    assert events == [
        TextDelta("A dog"),
        TextDelta(" on a beach."),
        Usage(input_tokens=1271, output_tokens=6, reasoning_tokens=None),
        Finish("stop"),
    ]
    assert sent_json(route.calls.last.request)["input"] == {
        "messages": [
            {"role": "system", "content": [{"text": "Describe pictures."}]},
            {
                "role": "user",
                "content": [
                    {"image": "https://example.com/dog.jpg"},
                    {"image": "data:image/jpeg;base64,/9j/4AAQ"},
                    {"text": "What is this?"},
                ],
            },
        ]
    }


@respx.mock
async def test_native_video_goes_to_the_multimodal_endpoint_and_its_tokens_are_read() -> None:
    route = respx.post(VISION_URL).mock(return_value=sse(recorded("dashscope", "native_video")))
    clip = "https://media.example.com/football.mp4"
    request = chat(
        "qwen-vl-max-latest",
        Message("system", "Describe clips."),
        Message("user", (VideoPart(url=clip), TextPart("What happens?"))),
    )

    events = await collect(QwenNative(), request)

    assert sent_json(route.calls.last.request)["input"] == {
        "messages": [
            {"role": "system", "content": [{"text": "Describe clips."}]},
            {"role": "user", "content": [{"video": clip}, {"text": "What happens?"}]},
        ]
    }
    # video_tokens is a part of input_tokens here (1,512 of 1,530).
    assert events[-2:] == [
        Usage(input_tokens=1530, output_tokens=8, video_input_tokens=1512),
        Finish("stop"),
    ]


@respx.mock
async def test_native_recording_goes_inline_and_audio_tokens_beside_the_input_are_added() -> None:
    route = respx.post(VISION_URL).mock(return_value=sse(recorded("dashscope", "native_audio")))
    talk = AudioPart(data="SUQzBAAAAAAAI1RTU0U=", mime_type="audio/mpeg")
    request = chat("qwen-audio-turbo-latest", Message("user", (talk, TextPart("What is said?"))))

    events = await collect(QwenNative(), request)

    # The Qwen-Audio guide's inline form: a data URL without a type.
    assert sent_json(route.calls.last.request)["input"]["messages"] == [
        {
            "role": "user",
            "content": [{"audio": "data:;base64,SUQzBAAAAAAAI1RTU0U="}, {"text": "What is said?"}],
        }
    ]
    # audio_tokens 85 beside input_tokens 33, as the guide's example reports them.
    assert events == [
        TextDelta("这段音频说的是"),
        TextDelta(":'欢迎使用阿里云'"),
        Usage(input_tokens=118, output_tokens=10, audio_input_tokens=85),
        Finish("stop"),
    ]


@respx.mock
async def test_native_arrears_is_an_auth_failure_though_the_status_is_400() -> None:
    respx.post(NATIVE_URL).mock(
        return_value=error_body(
            400,
            {
                "code": "Arrearage",
                "message": "Access denied, please make sure your account is in good standing.",
                "request_id": "0e1d2c3b-4a59-4687-9786-a5b4c3d2e1f0",
            },
        )
    )

    events = await collect(QwenNative(), chat("qwen-plus"))

    assert events == [
        Failure(
            ErrorKind.AUTH,
            "Alibaba DashScope refused the request: the account is in arrears (400, Arrearage): "
            "Access denied, please make sure your account is in good standing.",
            permanent=True,
            status=400,
        )
    ]


@respx.mock
async def test_native_error_with_msg_instead_of_message() -> None:
    respx.post(NATIVE_URL).mock(
        return_value=error_body(
            400, {"code": "InvalidParameter", "msg": "Range of top_p should be (0.0, 1.0]"}
        )
    )

    events = await collect(QwenNative(), chat("qwen-plus"))

    assert events == [
        Failure(
            ErrorKind.BAD_REQUEST,
            "Alibaba DashScope refused the request (400, InvalidParameter): "
            "Range of top_p should be (0.0, 1.0]",
            permanent=True,
            status=400,
        )
    ]


def test_parameters_follow_dashscope_bounds() -> None:
    with pytest.raises(ParamError, match="Thinking budget must be a whole number of at least 1"):
        QwenNative.clean_params({"thinking_budget": 0})
    with pytest.raises(ParamError, match="Unknown parameter: frequency_penalty."):
        QwenCompatible.clean_params({"frequency_penalty": 1})
    with pytest.raises(ParamError, match="Unknown parameter: top_k."):
        QwenCompatible.clean_params({"top_k": 5})
    assert QwenNative.clean_params({"enable_search": "yes", "top_k": "20"}) == {
        "enable_search": True,
        "top_k": 20,
    }
