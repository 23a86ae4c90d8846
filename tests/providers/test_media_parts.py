"""Videos and recordings, adapter by adapter: for each form a turn can carry them in (a
video of frames, a video file, a video by address, a recording file, a recording by
address), the user message exactly as the adapter sends it, or the sentence that refuses
it before any byte leaves (no request at all, token exchanges included). Each adapter is
called as the contract table says (contract.py), its endpoint answering with its recorded
answer. What is a vendor's own (Gemini's YouTube and Files API addresses, Zhipu's order,
the native endpoint DashScope picks, the usage each reports) is in test_<vendor>.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from providers.base import (
    AudioPart,
    ChatRequest,
    ErrorKind,
    Failure,
    Finish,
    ImagePart,
    Message,
    Part,
    TextPart,
    VideoPart,
)
from providers.echo import Echo
from providers.registry import provider_class
from tests.providers.contract import ADAPTERS, Adapter
from tests.providers.replay import FakeSleep, Replay, pieces, sent_json

PNG, JPEG = "iVBORw0KGgo=", "/9j/4AAQSkZJRg=="
FRAMES = VideoPart(
    frames=(
        ImagePart(data=PNG, mime_type="image/png"),
        ImagePart(data=JPEG, mime_type="image/jpeg"),
    )
)
MP4 = "AAAAIGZ0eXBpc29t"
WAV = "UklGRiQAAABXQVZF"
CLIP_URL = "https://media.example.com/clip.mp4"
TALK_URL = "https://media.example.com/talk.wav"
FORMS: dict[str, Part] = {
    "frames": FRAMES,
    "video file": VideoPart(data=MP4, mime_type="video/mp4"),
    "video url": VideoPart(url=CLIP_URL),
    "audio file": AudioPart(data=WAV, mime_type="audio/wav"),
    "audio url": AudioPart(url=TALK_URL),
}
ASK = "What happens?"

# --------------------------------------------------------------------------- the wire


def refused(display: str, form: str) -> str:
    what, how = {
        "frames": ("a video", "as frames"),
        "video file": ("a video", "as a file"),
        "video url": ("a video", "by web address"),
        "audio file": ("a recording", "as a file"),
        "audio url": ("a recording", "by web address"),
    }[form]
    return f"{display} cannot take {what} {how}."


def openai_message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": ASK}, *parts]}


def image_url(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


#: The frames as OpenAI image_url parts, inline as data URLs.
OPENAI_FRAMES = openai_message(
    image_url(f"data:image/png;base64,{PNG}"), image_url(f"data:image/jpeg;base64,{JPEG}")
)


def takes_nothing(display: str) -> dict[str, Any]:
    """An API that takes neither images nor video nor recordings."""
    return {form: refused(display, form) for form in FORMS}


def frames_as_images(display: str, frames: Any) -> dict[str, Any]:
    """An API that takes images only: the frames go as them, the rest is refused."""
    return {**takes_nothing(display), "frames": frames}


EXPECTED: dict[str, dict[str, Any]] = {
    "openai": {
        **frames_as_images("OpenAI", OPENAI_FRAMES),
        # input_audio: the base64 bytes without a data: prefix, and their format.
        "audio file": openai_message(
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
        ),
    },
    "openai_compatible": {
        "frames": OPENAI_FRAMES,
        "video file": openai_message(
            {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{MP4}"}}
        ),
        "video url": openai_message({"type": "video_url", "video_url": {"url": CLIP_URL}}),
        "audio file": openai_message(
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
        ),
        "audio url": refused("OpenAI-compatible server", "audio url"),
    },
    "local": takes_nothing("Local"),
    "deepseek": frames_as_images("DeepSeek", OPENAI_FRAMES),
    "xai": frames_as_images("xAI", OPENAI_FRAMES),
    "qwen": {
        # Qwen-VL's own part: one "video" listing the frames.
        "frames": openai_message(
            {
                "type": "video",
                "video": [f"data:image/png;base64,{PNG}", f"data:image/jpeg;base64,{JPEG}"],
            }
        ),
        "video file": openai_message(
            {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{MP4}"}}
        ),
        "video url": openai_message({"type": "video_url", "video_url": {"url": CLIP_URL}}),
        "audio file": openai_message(
            {"type": "input_audio", "input_audio": {"data": f"data:;base64,{WAV}", "format": "wav"}}
        ),
        "audio url": openai_message(
            {"type": "input_audio", "input_audio": {"data": TALK_URL, "format": "wav"}}
        ),
    },
    "qwen_native": {
        form: {"role": "user", "content": [{"text": ASK}, item]}
        for form, item in {
            "frames": {"video": [f"data:image/png;base64,{PNG}", f"data:image/jpeg;base64,{JPEG}"]},
            "video file": {"video": f"data:video/mp4;base64,{MP4}"},
            "video url": {"video": CLIP_URL},
            "audio file": {"audio": f"data:;base64,{WAV}"},
            "audio url": {"audio": TALK_URL},
        }.items()
    },
    "zhipu": {
        **takes_nothing("Zhipu GLM"),
        # Inline images as bare base64, as Zhipu's examples send them.
        "frames": openai_message(image_url(PNG), image_url(JPEG)),
        # The video first, as GLM-4V asks.
        "video url": {
            "role": "user",
            "content": [
                {"type": "video_url", "video_url": {"url": CLIP_URL}},
                {"type": "text", "text": ASK},
            ],
        },
    },
    "baichuan": takes_nothing("Baichuan"),
    "spark_http": takes_nothing("iFlytek Spark (HTTP)"),
    "pangu": takes_nothing("Huawei Pangu"),
    "qianfan": frames_as_images("Baidu Qianfan", OPENAI_FRAMES),
    "qianfan_v1": takes_nothing("Baidu Qianfan"),
    "hunyuan": {
        **takes_nothing("Tencent Hunyuan"),
        "frames": {
            "Role": "user",
            "Contents": [
                {"Type": "text", "Text": ASK},
                {"Type": "image_url", "ImageUrl": {"Url": f"data:image/png;base64,{PNG}"}},
                {"Type": "image_url", "ImageUrl": {"Url": f"data:image/jpeg;base64,{JPEG}"}},
            ],
        },
        "video url": {
            "Role": "user",
            "Contents": [
                {"Type": "text", "Text": ASK},
                {"Type": "video_url", "VideoUrl": {"Url": CLIP_URL}},
            ],
        },
    },
    "hunyuan_compatible": frames_as_images("Tencent Hunyuan", OPENAI_FRAMES),
    # Ollama's own images field: bare base64, beside the text.
    "ollama_native": frames_as_images(
        "Ollama", {"role": "user", "content": ASK, "images": [PNG, JPEG]}
    ),
    "llama_api": frames_as_images("Meta Llama API", OPENAI_FRAMES),
    "llama_api_compatible": frames_as_images("Meta Llama API (OpenAI-compatible)", OPENAI_FRAMES),
    "ollama": frames_as_images("Ollama", OPENAI_FRAMES),
    "anthropic": frames_as_images(
        "Anthropic",
        {
            "role": "user",
            "content": [
                {"type": "text", "text": ASK},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG},
                },
            ],
        },
    ),
    "gemini": {
        form: {"role": "user", "parts": [{"text": ASK}, *parts]}
        for form, parts in {
            "frames": [
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"inlineData": {"mimeType": "image/jpeg", "data": JPEG}},
            ],
            "video file": [{"inlineData": {"mimeType": "video/mp4", "data": MP4}}],
            "audio file": [{"inlineData": {"mimeType": "audio/wav", "data": WAV}}],
        }.items()
    }
    | {
        # Any address but YouTube's or Gemini's own Files API (test_gemini.py).
        "video url": "Google Gemini reads a video by web address only from YouTube or its "
        "own Files API; attach the video as a file.",
        "audio url": "Google Gemini reads a recording by web address only from its own Files "
        "API; attach the recording as a file.",
    },
}


def asking(part: Part) -> tuple[Message, ...]:
    return (Message("user", (TextPart(ASK), part)),)


def sent_message(adapter: Adapter, body: Any) -> Any:
    """The last message of a request body, wherever the adapter's API keeps it."""
    if adapter.name == "gemini":
        return body["contents"][-1]
    if adapter.name == "hunyuan":
        return body["Messages"][-1]
    if adapter.name == "qwen_native":
        return body["input"]["messages"][-1]
    return body["messages"][-1]


# --------------------------------------------------------------------------- the tests

CASES = [(a, form) for a in ADAPTERS for form in FORMS]


def test_every_adapter_of_the_contract_table_has_its_expectations() -> None:
    assert set(EXPECTED) == {a.name for a in ADAPTERS}
    assert all(set(forms) == set(FORMS) for forms in EXPECTED.values())


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.mark.parametrize(("adapter", "form"), CASES, ids=[f"{a}-{f}" for a, f in CASES])
async def test_each_form_is_sent_as_the_api_takes_it_or_refused_before_the_call(
    router: respx.MockRouter, adapter: Adapter, form: str
) -> None:
    if adapter.setup is not None:
        adapter.setup(router)  # a token exchange: refused forms must not reach it either
    stream = Replay(pieces(adapter.answer.body))
    answer = httpx.Response(200, headers={"content-type": adapter.content_type}, stream=stream)
    url = adapter.url
    if adapter.name == "qwen_native":  # its multimodal endpoint (test_dashscope.py)
        url = url.replace("/text-generation/", "/multimodal-generation/")
    route = router.route(method=adapter.method, url=url).mock(return_value=answer)
    request = dataclasses.replace(adapter.request(), messages=asking(FORMS[form]))

    async with httpx.AsyncClient() as client:
        provider = adapter.provider()
        events = [e async for e in provider.stream(client, request, sleep=FakeSleep())]

    expected = EXPECTED[adapter.name][form]
    if isinstance(expected, str):
        assert events == [Failure(ErrorKind.BAD_REQUEST, expected, True)]
        assert router.calls.call_count == 0
    else:
        assert isinstance(events[-1], Finish), events[-1]
        assert route.call_count == 1
        assert sent_message(adapter, sent_json(route.calls.last.request)) == expected


async def test_echo_takes_every_form_and_says_what_it_was_given() -> None:
    said = {
        "frames": "[video: 2 frames]",
        "video file": "[video: MP4, 1 KB]",
        "video url": f"[video: {CLIP_URL}]",
        "audio file": "[recording: WAV, 1 KB]",
        "audio url": f"[recording: {TALK_URL}]",
    }
    async with httpx.AsyncClient() as client:
        for form, part in FORMS.items():
            request = ChatRequest(model="echo", messages=asking(part))
            events = [e async for e in Echo().stream(client, request)]
            assert isinstance(events[-1], Finish), (form, events[-1])
            text = "".join(getattr(e, "text", "") for e in events)
            assert text == f"Echo #1: What happens? {said[form]}", form


async def test_echo_gives_a_files_size_and_a_recordings_encoding() -> None:
    clip = VideoPart(data="A" * 4 * 30_000, mime_type="video/webm")  # 90,000 bytes
    song = AudioPart(data="A" * 4 * 1_000, mime_type="audio/mpeg")
    request = ChatRequest(model="echo", messages=(Message("user", (TextPart(ASK), clip, song)),))
    async with httpx.AsyncClient() as client:
        text = "".join([getattr(e, "text", "") async for e in Echo().stream(client, request)])
    assert text == "Echo #1: What happens? [video: WEBM, 88 KB] [recording: MP3, 3 KB]"


async def test_spark_refuses_every_form_before_opening_its_websocket() -> None:
    spark = provider_class("spark")()
    async with httpx.AsyncClient() as client:
        for form, part in FORMS.items():
            request = ChatRequest(model="generalv3.5", messages=asking(part))
            # No server listens: a connection attempt would be a network failure instead.
            events = [e async for e in spark.stream(client, request, sleep=FakeSleep())]
            assert events == [Failure(ErrorKind.BAD_REQUEST, refused("iFlytek Spark", form), True)]
