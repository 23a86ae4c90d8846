"""What a pane's answer over a clip costs: the audio and video tokens Gemini reports, read
by its adapter, priced by the seeded catalog entry (Gemini 2.5 Flash prices audio input
apart: $1.00 a million against $0.30)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import respx
from asgiref.sync import sync_to_async

from playground.catalog import catalog
from providers.base import Message, TextPart, Usage, VideoPart
from providers.gemini import Gemini
from tests.providers.replay import chat, collect, recorded, sse

URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    ":streamGenerateContent?alt=sse"
)


@pytest.mark.django_db
@respx.mock
async def test_the_audio_tokens_gemini_reports_are_priced_at_the_catalogs_audio_price() -> None:
    respx.post(URL).mock(return_value=sse(recorded("gemini", "video_and_audio")))
    clip = VideoPart(data="AAAAIGZ0eXBpc29t", mime_type="video/mp4")
    request = chat("gemini-2.5-flash", Message("user", (clip, TextPart("What happens?"))))

    usage = next(e for e in await collect(Gemini(), request) if isinstance(e, Usage))
    flash = (await sync_to_async(catalog)())["gemini:gemini-2.5-flash"]

    # 1,746 prompt tokens: 192 of them the clip's sound (AUDIO), the rest at the input price
    # (the video's pictures have no price of their own); 14 out.
    cost = flash.cost(
        usage.input_tokens,
        usage.output_tokens,
        usage.audio_input_tokens,
        usage.video_input_tokens,
    )
    assert (
        cost
        == (Decimal("0.30") * (1746 - 192) + Decimal("1") * 192 + Decimal("2.50") * 14) / 1_000_000
    )
    assert cost != flash.cost(usage.input_tokens, usage.output_tokens)
