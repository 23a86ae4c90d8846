"""Videos and recordings on a turn: what the Send form takes and refuses (each a sentence,
nothing saved), how the files are kept (once, 0600, shared by a fork, swept when no turn
carries them), and which models are refused before the call."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from playground import media
from playground.catalog import CatalogModel
from playground.forking import fork_session
from playground.media_limits import MAX_AUDIO_BYTES, MAX_FRAMES, MAX_VIDEO_SECONDS
from playground.models import MediaFile, Session, Turn
from providers.base import AudioPart, ChatRequest, ImagePart, Message, TextPart, VideoPart
from providers.registry import provider_class
from tests.playground.helpers import send_form
from tests.playground.media.samples import flac, mp4, png, wav

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def media_dir(settings: Any, tmp_path: Path) -> Path:
    settings.PLAYGROUND_MEDIA_DIR = tmp_path / "media"
    return settings.PLAYGROUND_MEDIA_DIR


def upload(name: str, data: bytes, kind: str = "application/octet-stream") -> Any:
    return SimpleUploadedFile(name, data, content_type=kind)


def post(client: Any, **files: Any) -> Any:
    data = send_form("Describe it")
    data.update(files)
    return client.post(reverse("send_new"), data, **HTMX)


def errors_of(answer: Any) -> str:
    return answer.content.decode() if answer.get("HX-Retarget") == "#compose-errors" else ""


# --------------------------------------------------------------------------- recognising


def test_each_container_is_recognised_with_its_length() -> None:
    assert media.sniff(mp4(2.5)) == media.Sniffed("video", "video/mp4", 2.5)
    assert media.sniff(mp4(1, brand=b"qt  ")).mime_type == "video/quicktime"
    assert media.sniff(mp4(4, brand=b"M4A ")) == media.Sniffed("audio", "audio/mp4", 4.0)
    assert media.sniff(wav(1.5)) == media.Sniffed("audio", "audio/wav", 1.5)
    assert media.sniff(flac(3.0)) == media.Sniffed("audio", "audio/flac", 3.0)
    assert media.sniff(b"ID3\x04" + b"\0" * 20).mime_type == "audio/mpeg"
    assert media.sniff(b"OggS" + b"\0" * 20).mime_type == "audio/ogg"
    webm = b"\x1a\x45\xdf\xa3" + b"\0" * 8 + b"\x42\x82\x84webm" + b"\0" * 16
    assert media.sniff(webm) == media.Sniffed("video", "video/webm", None)


@pytest.mark.parametrize(
    ("name", "data", "sentence"),
    [
        ("clip.mp4", mp4()[:-10], "clip.mp4 is cut short (a box runs past the end of the file)."),
        ("clip.mp4", mp4()[:30], "clip.mp4 is cut short"),
        ("talk.wav", wav(1)[:-100], "talk.wav is cut short (its samples end before"),
        ("photo.mp4", png(), "photo.mp4 is not a video or a recording this playground takes."),
        ("talk.wav", mp4(), "talk.wav is not a recording (WAV, MP3, Ogg, FLAC, M4A"),
        ("empty.mp4", b"", "empty.mp4 is empty."),
    ],
)
def test_a_bad_file_gets_a_sentence_naming_it(name: str, data: bytes, sentence: str) -> None:
    kind = "audio" if name.endswith(".wav") else "video"
    with pytest.raises(media.AttachmentError) as refused:
        media.check_upload(kind, name, data)
    assert str(refused.value).startswith(sentence)


def test_length_and_size_limits_are_sentences() -> None:
    with pytest.raises(media.AttachmentError, match=r"lasts 5\.5 minutes; the limit is 5"):
        media.check_upload("video", "long.mp4", mp4(MAX_VIDEO_SECONDS + 30))
    with pytest.raises(media.AttachmentError, match="big.wav is larger than 10 MB"):
        media.check_upload("audio", "big.wav", b"\0" * (MAX_AUDIO_BYTES + 1))
    with pytest.raises(media.AttachmentError, match=r"Video URLs must start with https://"):
        media.read_media("http://example.com/a.mp4", "", [], [], [])
    with pytest.raises(media.AttachmentError, match="Attach at most 2 recordings"):
        media.read_media(
            "", "https://a.example/1.mp3\nhttps://a.example/2.mp3", [], [("a.wav", wav())], []
        )
    frames = [(f"{n}.png", png()) for n in range(MAX_FRAMES + 1)]
    with pytest.raises(media.AttachmentError, match=f"at most {MAX_FRAMES} frames"):
        media.read_media("", "", [], [], frames)


# --------------------------------------------------------------------------- Send


@pytest.mark.django_db
def test_send_keeps_a_video_and_a_recording_once_and_private(
    owner_client: Any, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.tasks import run_turn

    monkeypatch.setattr(run_turn, "delay", lambda *args: None)
    clip = mp4(3)
    answer = post(
        owner_client,
        videos=upload("clip.mp4", clip, "video/mp4"),
        audios=upload("talk.wav", wav(2), "audio/wav"),
        video_urls="https://videos.example/tour.mp4",
    )
    assert not errors_of(answer), answer.content
    turn = Turn.objects.get()
    assert [(e["kind"], e["form"]) for e in turn.media] == [
        ("video", "file"),
        ("video", "url"),
        ("audio", "file"),
    ]
    video = turn.media[0]
    assert (video["name"], video["mime_type"], video["size"], video["seconds"]) == (
        "clip.mp4",
        "video/mp4",
        len(clip),
        3.0,
    )
    path = media.file_path(video["sha256"])
    assert path.read_bytes() == clip
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert MediaFile.objects.count() == 2
    # The same clip again: one file, linked to both turns.
    session = turn.session
    again = send_form("Again")
    again["videos"] = upload("clip.mp4", clip, "video/mp4")
    assert owner_client.post(reverse("send", args=[session.pk]), again, **HTMX).status_code == 200
    assert MediaFile.objects.count() == 2
    assert MediaFile.objects.get(sha256=video["sha256"]).turns.count() == 2
    assert len(list(media_dir.glob("??/*"))) == 2


@pytest.mark.django_db
def test_a_bad_file_changes_nothing_and_the_sentence_shows(
    owner_client: Any, media_dir: Path
) -> None:
    answer = post(
        owner_client,
        videos=upload("clip.mp4", mp4()[:-10], "video/mp4"),
        audios=upload("talk.wav", wav(2), "audio/wav"),
    )
    assert "clip.mp4 is cut short" in errors_of(answer)
    assert not Session.objects.exists() and not MediaFile.objects.exists()
    assert not media_dir.exists() or not list(media_dir.glob("??/*"))


@pytest.mark.django_db
def test_a_fork_shares_the_file_and_the_sweep_removes_it_once_no_turn_carries_it(
    owner: Any, owner_client: Any, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.tasks import run_turn

    monkeypatch.setattr(run_turn, "delay", lambda *args: None)
    post(owner_client, audios=upload("talk.wav", wav(2), "audio/wav"))
    turn = Turn.objects.get()
    (path,) = media_dir.glob("??/*")
    copy = fork_session(turn.session, owner.pk, through_index=0)
    copied = copy.turns.get()
    assert copied.media == turn.media
    assert MediaFile.objects.get().turns.count() == 2
    turn.session.delete()
    assert media.sweep() == 0 and path.exists()  # the fork still carries it
    copy.delete()
    (media_dir / "ab").mkdir()
    (media_dir / "ab" / ("ab" * 32)).write_bytes(b"left by a Send that rolled back")
    assert media.sweep() == 2
    assert not path.exists() and not MediaFile.objects.exists()
    assert not list(media_dir.glob("??/*"))


# --------------------------------------------------------------------------- before the call


def model(provider: str, **can: bool) -> CatalogModel:
    return CatalogModel(
        key=f"{provider}:m", display_name="Some Model", provider=provider, model_id="m", **can
    )


def request(*parts: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", (*parts, TextPart("What is it?")))])


FRAMES = VideoPart(frames=(ImagePart(data="AAAA"), ImagePart(data="BBBB")))


def test_a_model_that_cannot_take_them_is_refused_with_its_name() -> None:
    clip = VideoPart(data="AAAA")
    talk = AudioPart(data="AAAA")
    assert media.media_refusal(model("openai"), request(clip)) == "Some Model cannot take videos."
    assert (
        media.media_refusal(model("openai", vision=True), request(talk))
        == "Some Model cannot take recordings (audio)."
    )
    # Frames go to a model that takes images, as its images.
    assert media.media_refusal(model("openai", vision=True), request(FRAMES)) == ""
    assert media.media_refusal(model("openai"), request(FRAMES)) == "Some Model cannot take videos."


def test_frames_go_as_images_where_the_api_takes_no_video() -> None:
    provider = provider_class("ollama_native")()
    sent = provider.prepare(request(FRAMES))
    assert sent.messages[0].content == (
        ImagePart(data="AAAA"),
        ImagePart(data="BBBB"),
        TextPart("What is it?"),
    )
    assert sent.videos == []


def test_the_cost_prices_reported_audio_tokens_at_their_own_price() -> None:
    omni = CatalogModel(
        key="q",
        display_name="Q",
        provider="qwen",
        model_id="q",
        input_price=Decimal("0.4"),
        output_price=Decimal("1.6"),
        audio_input_price=Decimal("25"),
    )
    # 1,000 input tokens of which 600 audio; 100 output.
    assert (
        omni.cost(1000, 100, audio_tokens=600)
        == (Decimal("0.4") * 400 + Decimal("25") * 600 + Decimal("1.6") * 100) / 1_000_000
    )
    assert omni.cost(1000, 100) == (Decimal("0.4") * 1000 + Decimal("1.6") * 100) / 1_000_000


def test_a_recording_by_address_is_sent_with_the_format_its_ending_says() -> None:
    provider = provider_class("qwen")()
    parts = media.media_parts(
        [
            {"kind": "audio", "form": "url", "url": "https://talks.example/keynote.mp3?sig=1"},
            {"kind": "audio", "form": "url", "url": "https://talks.example/stream"},
        ]
    )
    sent = provider.body(provider.prepare(request(*parts)))["messages"][-1]["content"]
    assert [p["input_audio"]["format"] for p in sent[:2]] == ["mp3", "wav"]
