"""Small media files built byte by byte, as their containers lay them out: an MP4 (ISO
BMFF: ftyp, moov with its mvhd, mdat), a WAV (RIFF: fmt, data), a FLAC (STREAMINFO), and
one frame image. No encoder is needed, and each length is exact."""

from __future__ import annotations

import struct
import zlib


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def mp4(seconds: float = 2.0, brand: bytes = b"isom", payload: bytes = b"\0" * 64) -> bytes:
    """An MP4 whose movie header says it lasts ``seconds`` (timescale 1000)."""
    mvhd = struct.pack(">B3xIIII", 0, 0, 0, 1000, int(seconds * 1000)) + b"\0" * 80
    return (
        box(b"ftyp", brand + struct.pack(">I", 512) + brand + b"mp41")
        + box(b"moov", box(b"mvhd", mvhd))
        + box(b"mdat", payload)
    )


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A silent 8-bit mono WAV of ``seconds``."""
    samples = b"\x80" * int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    body = b"WAVE" + struct.pack("<4sI", b"fmt ", len(fmt)) + fmt
    body += struct.pack("<4sI", b"data", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def flac(seconds: float = 3.0, rate: int = 16000) -> bytes:
    """A FLAC's marker and STREAMINFO (what its length is read from); no audio frames."""
    samples = int(seconds * rate)
    info = struct.pack(">HH", 4096, 4096) + b"\0" * 6
    info += bytes([rate >> 12 & 0xFF, rate >> 4 & 0xFF, (rate & 0x0F) << 4 | 0x0, 0x70])
    info = (
        info[:13] + bytes([0x70 | (samples >> 32 & 0x0F)]) + struct.pack(">I", samples & 0xFFFFFFFF)
    )
    info += b"\0" * 16  # MD5 of the audio
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def png(width: int = 2, height: int = 2) -> bytes:
    raw = b"".join(b"\0" + b"\xff\0\0" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
