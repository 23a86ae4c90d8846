"""A turn's files reach only those who may see its session: the owner, a share link's
viewer; never an outsider, an anonymous visitor, or anyone through another session's id or
a revoked link. The history shows a player for each file and a strip for frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from playground import share_links
from playground.models import Audience, Turn
from tests.playground.helpers import make_turn, send_form
from tests.playground.media.samples import mp4, png, wav
from tests.playground.share_helpers import link_to

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
CLIP = mp4(2)
TALK = wav(1)


@pytest.fixture(autouse=True)
def media_dir(settings: Any, tmp_path: Path) -> Path:
    settings.PLAYGROUND_MEDIA_DIR = tmp_path / "media"
    return settings.PLAYGROUND_MEDIA_DIR


@pytest.fixture
def turn(owner_client: Any, monkeypatch: pytest.MonkeyPatch) -> Turn:
    from playground.tasks import run_turn

    monkeypatch.setattr(run_turn, "delay", lambda *args: None)
    data = send_form("What happens here?")
    data["videos"] = SimpleUploadedFile("clip.mp4", CLIP, content_type="video/mp4")
    data["audios"] = SimpleUploadedFile("talk.wav", TALK, content_type="audio/wav")
    data["video_frames"] = [SimpleUploadedFile(f"{n}.png", png(n + 1, 2)) for n in range(2)]
    data["audio_urls"] = "https://talks.example/keynote.mp3"
    answer = owner_client.post(reverse("send_new"), data, **HTMX)
    assert answer.status_code == 200 and "HX-Retarget" not in answer, answer.content
    return Turn.objects.get()


def url(turn: Turn, n: int, frame: int | None = None) -> str:
    if frame is None:
        return reverse("turn_media", args=[turn.session_id, turn.pk, n])
    return reverse("turn_media_frame", args=[turn.session_id, turn.pk, n, frame])


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_owner_gets_each_file_with_the_type_read_from_it(owner_client: Any, turn: Turn) -> None:
    # Entries: the clip, the frames, then the recording and the one by address.
    assert [(e["kind"], e["form"]) for e in turn.media] == [
        ("video", "file"),
        ("video", "frames"),
        ("audio", "file"),
        ("audio", "url"),
    ]
    clip = owner_client.get(url(turn, 0))
    assert (clip.status_code, clip["Content-Type"], body(clip)) == (200, "video/mp4", CLIP)
    assert clip["X-Content-Type-Options"] == "nosniff"
    assert clip["Cache-Control"] == "private, max-age=3600"
    talk = owner_client.get(url(turn, 2))
    assert (talk["Content-Type"], body(talk)) == ("audio/wav", TALK)
    frame = owner_client.get(url(turn, 1, frame=1))
    assert (frame["Content-Type"], body(frame)) == ("image/png", png(2, 2))
    assert owner_client.get(url(turn, 3)).status_code == 404  # by address: nothing kept
    assert owner_client.get(url(turn, 4)).status_code == 404
    assert owner_client.get(url(turn, 1, frame=2)).status_code == 404


def test_a_player_seeks_by_byte_ranges(owner_client: Any, turn: Turn, outsider: Any) -> None:
    """Video and audio players ask for ranges to seek (Safari plays nothing without)."""
    size = len(CLIP)
    whole = owner_client.get(url(turn, 0))
    assert whole["Accept-Ranges"] == "bytes"

    def ranged(header: str) -> Any:
        return owner_client.get(url(turn, 0), HTTP_RANGE=header)

    part = ranged("bytes=10-19")
    assert (part.status_code, body(part)) == (206, CLIP[10:20])
    assert (part["Content-Range"], part["Content-Length"]) == (f"bytes 10-19/{size}", "10")
    assert part["Content-Type"] == "video/mp4"
    tail = ranged("bytes=-7")
    assert (tail.status_code, body(tail)) == (206, CLIP[-7:])
    assert tail["Content-Range"] == f"bytes {size - 7}-{size - 1}/{size}"
    rest = ranged(f"bytes={size - 3}-")
    assert body(rest) == CLIP[-3:]
    past = ranged("bytes=999999-")  # a range past the end
    assert (past.status_code, past["Content-Range"]) == (416, f"bytes */{size}")
    capped = ranged(f"bytes=0-{size * 10}")  # an end past the end is the end
    assert (capped.status_code, body(capped)) == (206, CLIP)
    for ignored in ("bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=-"):
        answer = ranged(ignored)
        assert (answer.status_code, body(answer)) == (200, CLIP), ignored
    # A range changes nothing of who may ask.
    client = Client()
    client.force_login(outsider)
    assert client.get(url(turn, 0), HTTP_RANGE="bytes=0-9").status_code == 404


def test_the_history_shows_a_player_per_file_and_the_frames(owner_client: Any, turn: Turn) -> None:
    from playground.models import Response, Status

    Response.objects.filter(turn=turn).update(status=Status.DONE, text="A cat.")
    page = owner_client.get(reverse("session", args=[turn.session_id])).content.decode()
    base = f"media/{turn.pk}"
    assert f'<video controls preload="metadata" src="{base}/0/"' in page
    assert f'<audio controls preload="metadata" src="{base}/2/"' in page
    assert f'<img src="{base}/1/frame/0/" alt="Frame 1"' in page
    assert 'href="https://talks.example/keynote.mp3" rel="noreferrer noopener"' in page
    assert "2 videos · 2 recordings" in page
    # The links are relative to the page: this one's resolve under /s/<id>/.
    assert owner_client.get(f"/s/{turn.session_id}/{base}/0/").status_code == 200


def test_no_one_else_reaches_them(turn: Turn, outsider: Any) -> None:
    client = Client()  # not the owner's
    assert client.get(url(turn, 0)).status_code == 302  # to sign in
    client.force_login(outsider)
    assert client.get(url(turn, 0)).status_code == 404
    assert client.get(url(turn, 1, frame=0)).status_code == 404
    # The outsider's own session id with the owner's turn: still nothing.
    theirs = make_turn(outsider, [("echo", {})], "Mine")
    mixed = reverse("turn_media", args=[theirs.session_id, turn.pk, 0])
    assert client.get(mixed).status_code == 404


def test_a_share_link_shows_them_until_it_is_revoked(turn: Turn) -> None:
    client = Client()  # anyone with the link
    link, token = link_to(turn.session, Audience.ANYONE)
    shared = reverse("shared_turn_media", args=[token, turn.pk, 0])
    answer = client.get(shared)
    assert (answer.status_code, body(answer)) == (200, CLIP)
    frame = reverse("shared_turn_media_frame", args=[token, turn.pk, 1, 0])
    assert client.get(frame).status_code == 200
    page = client.get(reverse("shared", args=[token])).content.decode()
    assert f'src="media/{turn.pk}/0/"' in page
    other = make_turn(turn.session.owner, [("echo", {})], "Another session")
    assert client.get(reverse("shared_turn_media", args=[token, other.pk, 0])).status_code == 404
    share_links.revoke(link)
    assert client.get(shared).status_code != 200
    assert CLIP not in client.get(shared).content


def test_the_exports_name_each_attachment_and_never_hold_its_bytes(
    owner_client: Any, turn: Turn
) -> None:
    import base64
    import json

    import jsonschema

    from tests.playground.test_export import SCHEMA_FILE

    answer = owner_client.get(reverse("export_json", args=[turn.session_id]))
    data = json.loads(b"".join(answer.streaming_content) if answer.streaming else answer.content)
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(data, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    (exported,) = data["turns"]
    assert exported["media"][0] == {
        "kind": "video",
        "form": "file",
        "name": "clip.mp4",
        "mime_type": "video/mp4",
        "size": len(CLIP),
        "seconds": 2.0,
    }
    assert exported["media"][1]["frames"] == [
        {"mime_type": "image/png", "bytes": len(png(n + 1, 2))} for n in range(2)
    ]
    assert exported["media"][3] == {
        "kind": "audio",
        "form": "url",
        "url": "https://talks.example/keynote.mp3",
    }
    markdown = owner_client.get(reverse("export_md", args=[turn.session_id]))
    text = (
        b"".join(markdown.streaming_content) if markdown.streaming else markdown.content
    ).decode()
    assert (
        f"Video and audio: video clip.mp4 (video/mp4, {len(CLIP):,} bytes, 2.0 s); video of 2 "
        f"frames; recording talk.wav (audio/wav, {len(TALK):,} bytes, 1.0 s); recording "
        "<https://talks.example/keynote.mp3>"
    ) in text
    for blob in (CLIP, TALK):
        encoded = base64.b64encode(blob).decode()[:40]
        assert encoded not in text and encoded not in json.dumps(data)


def test_an_admin_sets_what_a_model_takes_and_its_audio_price(admin_client: Any) -> None:
    from decimal import Decimal

    from playground.models import CatalogEntry

    entry = CatalogEntry.objects.get(key="gemini:gemini-2.5-flash")
    assert (entry.video, entry.audio, entry.audio_input_price) == (True, True, Decimal("1"))
    page = admin_client.get(reverse("admin:playground_catalogentry_change", args=[entry.pk]))
    html = page.content.decode()
    for field in ("video", "audio", "audio_input_price", "video_input_price"):
        assert f'name="{field}"' in html
