"""Videos and recordings a turn carries besides its images: read from the Send form, checked
(type by the first bytes, a truncated file, size, count, and length where the container
says it cheaply), kept once on disk by SHA-256, and turned into the parts a provider is
sent. Every problem is a sentence; nothing is written until the whole form is valid.

A turn's ``media`` is a list of entries:
``{"kind": "video"|"audio", "form": "file", "sha256", "mime_type", "name", "size", "seconds"}``,
``{"kind": "video"|"audio", "form": "url", "url"}``, or
``{"kind": "video", "form": "frames", "frames": [image entries as Turn.images has them]}``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import mimetypes
import os
import struct
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from playground.attachments import AttachmentError, image_from_upload, image_parts
from playground.catalog import CatalogModel
from playground.media_limits import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_AUDIOS,
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    MAX_URL_CHARS,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    MAX_VIDEOS,
    MB,
)
from providers.base import AudioPart, ChatRequest, MediaForm, VideoPart

VIDEO_TYPES = {"video/mp4": "MP4", "video/quicktime": "QuickTime", "video/webm": "WebM"}
AUDIO_TYPES = {
    "audio/wav": "WAV",
    "audio/mpeg": "MP3",
    "audio/ogg": "Ogg",
    "audio/flac": "FLAC",
    "audio/mp4": "M4A",
}
KINDS = {"video": "video", "audio": "recording"}


def limits_sentence() -> str:
    """What the composer says before anyone chooses a file."""
    return (
        f"Videos: MP4, QuickTime or WebM, up to {MAX_VIDEO_BYTES // MB} MB and "
        f"{MAX_VIDEO_SECONDS // 60} minutes each, at most {MAX_VIDEOS} a turn; or up to "
        f"{MAX_FRAMES} frames (images of {MAX_FRAME_BYTES // MB} MB at most). "
        f"Recordings: WAV, MP3, Ogg, FLAC or M4A, up to {MAX_AUDIO_BYTES // MB} MB and "
        f"{MAX_AUDIO_SECONDS // 60} minutes each, at most {MAX_AUDIOS} a turn."
    )


# --------------------------------------------------------------------------- recognising


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "video" or "audio"
    mime_type: str
    seconds: float | None  # None: not cheaply readable from this container


class Unreadable(ValueError):
    """The file is not what it says, or is cut short; the message says which."""


def sniff(data: bytes) -> Sniffed:
    """What ``data`` is, from its first bytes and its container's own structure."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        seconds = _mp4_seconds(data)
        if brand in (b"M4A ", b"M4B "):
            return Sniffed("audio", "audio/mp4", seconds)
        mime = "video/quicktime" if brand == b"qt  " else "video/mp4"
        return Sniffed("video", mime, seconds)
    if data[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM (Matroska's web profile)
        if b"webm" not in data[:64]:
            raise Unreadable("is a Matroska file; convert it to MP4 or WebM")
        return Sniffed("video", "video/webm", None)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return Sniffed("audio", "audio/wav", _wav_seconds(data))
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return Sniffed("audio", "audio/mpeg", None)
    if data[:4] == b"OggS":
        return Sniffed("audio", "audio/ogg", None)
    if data[:4] == b"fLaC":
        return Sniffed("audio", "audio/flac", _flac_seconds(data))
    raise Unreadable("is not a video or a recording this playground takes")


def _boxes(data: bytes, start: int, end: int) -> Iterable[tuple[bytes, int, int]]:
    """The ISO BMFF boxes between ``start`` and ``end``: (type, body start, box end)."""
    at = start
    while at < end:
        if end - at < 8:
            raise Unreadable("is cut short (its last box is incomplete)")
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            if end - at < 16:
                raise Unreadable("is cut short (its last box is incomplete)")
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise Unreadable("is cut short (a box runs past the end of the file)")
        yield kind, at + header, at + size
        at += size


def _mp4_seconds(data: bytes) -> float | None:
    movie = None
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind == b"moov":
            movie = (body, end)
    if movie is None:
        raise Unreadable("is cut short or not finished (it has no movie header)")
    for kind, body, end in _boxes(data, *movie):
        if kind == b"mvhd" and end - body >= 32:
            version = data[body]
            if version == 1:
                scale, duration = struct.unpack(">IQ", data[body + 20 : body + 32])
            else:
                scale, duration = struct.unpack(">II", data[body + 12 : body + 20])
            return duration / scale if scale else None
    return None


def _wav_seconds(data: bytes) -> float | None:
    byte_rate = None
    at = 12
    while at + 8 <= len(data):
        kind, size = struct.unpack("<4sI", data[at : at + 8])
        if kind == b"fmt " and size >= 16 and at + 24 <= len(data):
            (byte_rate,) = struct.unpack("<I", data[at + 16 : at + 20])
        if kind == b"data":
            if at + 8 + size > len(data):
                raise Unreadable("is cut short (its samples end before the header says)")
            return size / byte_rate if byte_rate else None
        at += 8 + size + (size & 1)
    raise Unreadable("is cut short (it has no samples)")


def _flac_seconds(data: bytes) -> float | None:
    if len(data) < 4 + 4 + 18:
        raise Unreadable("is cut short")
    info = data[8:26]  # STREAMINFO, the first metadata block
    rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    samples = ((info[13] & 0x0F) << 32) | struct.unpack(">I", info[14:18])[0]
    return samples / rate if rate and samples else None


# --------------------------------------------------------------------------- the form


@dataclass
class Upload:
    """A file read from the form, checked, not yet written."""

    name: str
    data: bytes
    sniffed: Sniffed

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def entry(self) -> dict[str, Any]:
        return {
            "kind": self.sniffed.kind,
            "form": "file",
            "sha256": self.sha256,
            "mime_type": self.sniffed.mime_type,
            "name": self.name[:200],
            "size": len(self.data),
            "seconds": self.sniffed.seconds,
        }


def check_upload(kind: str, name: str, data: bytes) -> Upload:
    most = MAX_VIDEO_BYTES if kind == "video" else MAX_AUDIO_BYTES
    if len(data) > most:
        raise AttachmentError(f"{name} is larger than {most // MB} MB.")
    if not data:
        raise AttachmentError(f"{name} is empty.")
    try:
        sniffed = sniff(data)
    except Unreadable as error:
        raise AttachmentError(f"{name} {error}.") from None
    except struct.error:
        raise AttachmentError(f"{name} is cut short.") from None
    if sniffed.kind != kind:
        names = VIDEO_TYPES if kind == "video" else AUDIO_TYPES
        raise AttachmentError(
            f"{name} is not a {KINDS[kind]} ({', '.join(names.values())} are taken here)."
        )
    longest = MAX_VIDEO_SECONDS if kind == "video" else MAX_AUDIO_SECONDS
    if sniffed.seconds is not None and sniffed.seconds > longest:
        raise AttachmentError(
            f"{name} lasts {sniffed.seconds / 60:.1f} minutes; the limit is "
            f"{longest // 60} minutes."
        )
    return Upload(name, data, sniffed)


def url_entry(kind: str, url: str) -> dict[str, Any]:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or len(url) > MAX_URL_CHARS:
        raise AttachmentError(
            f"{KINDS[kind].capitalize()} URLs must start with https:// ({url[:80]!r})."
        )
    return {"kind": kind, "form": "url", "url": url}


@dataclass
class AttachedMedia:
    """What the form asked to attach: entries in order, and the uploads to write."""

    entries: list[dict[str, Any]]
    uploads: list[Upload]


def read_media(
    video_urls: str,
    audio_urls: str,
    videos: Sequence[tuple[str, bytes]],
    audios: Sequence[tuple[str, bytes]],
    frames: Sequence[tuple[str, bytes]],
) -> AttachedMedia:
    """The turn's videos and recordings from the form's fields (uploads as (name, bytes),
    each read at most one byte past its limit); AttachmentError for the first problem."""
    uploads = [check_upload("video", name, data) for name, data in videos]
    uploads += [check_upload("audio", name, data) for name, data in audios]
    entries = [u.entry() for u in uploads if u.sniffed.kind == "video"]
    entries += [url_entry("video", u) for u in video_urls.splitlines() if u.strip()]
    if frames:
        if len(frames) > MAX_FRAMES:
            raise AttachmentError(f"Give a video at most {MAX_FRAMES} frames.")
        checked = []
        for name, data in frames:
            if len(data) > MAX_FRAME_BYTES:
                raise AttachmentError(f"Frame {name} is larger than {MAX_FRAME_BYTES // MB} MB.")
            checked.append(image_from_upload(name, data))
        entries.append({"kind": "video", "form": "frames", "frames": checked})
    if sum(e["kind"] == "video" for e in entries) > MAX_VIDEOS:
        raise AttachmentError(f"Attach at most {MAX_VIDEOS} videos.")
    audio = [u.entry() for u in uploads if u.sniffed.kind == "audio"]
    audio += [url_entry("audio", u) for u in audio_urls.splitlines() if u.strip()]
    if len(audio) > MAX_AUDIOS:
        raise AttachmentError(f"Attach at most {MAX_AUDIOS} recordings.")
    return AttachedMedia(entries + audio, uploads)


# --------------------------------------------------------------------------- storage


def media_dir() -> Path:
    return Path(settings.PLAYGROUND_MEDIA_DIR)


def file_path(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256")
    return media_dir() / sha256[:2] / sha256


def keep(uploads: Iterable[Upload], turn: Any) -> None:
    """Write each upload once (named by its SHA-256) and link it to ``turn``; inside the
    Send's transaction, so the links go with the turn. A file written for a Send that then
    rolls back has no row and is removed by :func:`sweep`."""
    from playground.models import MediaFile

    for upload in uploads:
        path = file_path(upload.sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as out:  # mkstemp makes it 0600
                out.write(upload.data)
            os.replace(tmp, path)
        row, _ = MediaFile.objects.get_or_create(
            sha256=upload.sha256,
            defaults={
                "mime_type": upload.sniffed.mime_type,
                "size": len(upload.data),
                "seconds": upload.sniffed.seconds,
            },
        )
        row.turns.add(turn)


def link_copies(copies: dict[int, int]) -> None:
    """Copied turns (a fork, a rematch; ``copies``: old turn id -> new turn id) carry the
    same files: link them to the copies, in one query each way."""
    if not copies:
        return
    from playground.models import MediaFile

    links = MediaFile.turns.through
    links.objects.bulk_create(
        links(mediafile_id=link.mediafile_id, turn_id=copies[link.turn_id])
        for link in links.objects.filter(turn_id__in=list(copies))
    )


def sweep() -> int:
    """Remove the files no turn carries any more (their sessions deleted for good), and
    their rows; returns how many went."""
    from playground.models import MediaFile

    gone = 0
    for row in MediaFile.objects.filter(turns=None):
        file_path(row.sha256).unlink(missing_ok=True)
        row.delete()
        gone += 1
    known = set(MediaFile.objects.values_list("sha256", flat=True))
    root = media_dir()
    if root.is_dir():
        for path in root.glob("??/*"):
            if path.name not in known and not path.name.startswith(".upload-"):
                path.unlink(missing_ok=True)
                gone += 1
    return gone


# --------------------------------------------------------------------------- the quota

#: Tokens a second of video or of a recording counts at most among the APIs here (Gemini:
#: 263 a second of video with its sound, 32 a second of audio; Qwen-Omni: 25 of audio).
VIDEO_TOKENS_PER_SECOND = 300
AUDIO_TOKENS_PER_SECOND = 32
FRAME_TOKENS = 1600  # as an image (quotas.IMAGE_TOKENS)


def media_tokens(entries: Iterable[dict[str, Any]]) -> int:
    """At most how many input tokens the videos and recordings count: by their length where
    it was read, else as long as the limit allows (a web address's length is unknown)."""
    total = 0
    for entry in entries:
        if entry.get("form") == "frames":
            total += FRAME_TOKENS * len(entry.get("frames", []))
            continue
        video = entry.get("kind") == "video"
        seconds = entry.get("seconds") or (MAX_VIDEO_SECONDS if video else MAX_AUDIO_SECONDS)
        rate = VIDEO_TOKENS_PER_SECOND if video else AUDIO_TOKENS_PER_SECOND
        total += int(seconds * rate) + 1
    return total


# --------------------------------------------------------------------------- the call


@functools.lru_cache(maxsize=2)
def _inline(sha256: str) -> str:
    return base64.b64encode(file_path(sha256).read_bytes()).decode()


def forget_inline() -> None:
    """Let go of the files read for a claim (kept while its panes' requests are built, so
    that three panes share one copy)."""
    _inline.cache_clear()


def media_parts(entries: Iterable[dict[str, Any]]) -> tuple[VideoPart | AudioPart, ...]:
    parts: list[VideoPart | AudioPart] = []
    for entry in entries:
        form = entry.get("form")
        mime = entry.get("mime_type", "")
        if entry.get("kind") == "video":
            if form == "frames":
                parts.append(VideoPart(frames=image_parts(entry.get("frames", []))))
            elif form == "url":
                parts.append(VideoPart(url=entry["url"]))
            else:
                parts.append(VideoPart(data=_inline(entry["sha256"]), mime_type=mime))
        elif entry.get("kind") == "audio":
            if form == "url":
                # An address says its type only by its ending, if at all (".mp3" …).
                guessed = mimetypes.guess_type(urlsplit(entry["url"]).path)[0] or ""
                mime = {"audio/x-wav": "audio/wav", "audio/x-flac": "audio/flac"}.get(
                    guessed, guessed
                )
                parts.append(AudioPart(url=entry["url"], mime_type=mime or "audio/wav"))
            else:
                parts.append(AudioPart(data=_inline(entry["sha256"]), mime_type=mime))
    return tuple(parts)


_FORM_WORDS: dict[MediaForm, str] = {
    "file": "as an uploaded file",
    "url": "by web address",
    "frames": "as frames",
}


def media_refusal(model: CatalogModel, request: ChatRequest) -> str:
    """Why ``model`` cannot be sent the videos and recordings of ``request`` (its sentence),
    or "" when it can."""
    provider = model.provider_class
    for video in request.videos:
        if video.form == "frames" and (model.vision or model.video):
            continue  # as its images, where the API takes no frames
        if not model.video:
            return f"{model.display_name} cannot take videos."
        if video.form not in provider.video_forms:
            return f"{model.display_name} cannot take a video {_FORM_WORDS[video.form]}."
    for audio in request.audios:
        if not model.audio:
            return f"{model.display_name} cannot take recordings (audio)."
        if audio.form not in provider.audio_forms:
            return f"{model.display_name} cannot take a recording {_FORM_WORDS[audio.form]}."
        if not provider.takes_audio_type(audio):
            return f"{model.display_name} takes recordings as {provider.audio_type_names()} only."
    return ""
