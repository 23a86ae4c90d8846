"""The delta fragment is built by hand for speed; it must be exactly what the template
renders, escaping included (model output is untrusted)."""

from __future__ import annotations

import pytest
from django.template.loader import get_template

from playground.live.fragments import render_batch
from playground.live.pane_log import Batch


@pytest.mark.parametrize(
    "batch",
    [
        Batch(last_seq=3, text='<img src=x onerror="alert(1)"> & \'q\'', tokens=4, elapsed_ms=80,
              ttft_ms=20),
        Batch(last_seq=9, text="", reasoning="<b>think</b>", tokens=None, elapsed_ms=None),
        Batch(last_seq=1, message="waiting for Local · SmolLM2-135M — 1 ahead"),
        Batch(last_seq=5, text="a", tokens=9, elapsed_ms=2600, ttft_ms=300, waited_ms=2000),
    ],
)  # fmt: skip
def test_the_hand_built_delta_is_the_template_s(batch: Batch) -> None:
    template = get_template("playground/_response.html#delta")
    assert render_batch(7, batch) == template.render({"rid": 7, "b": batch})
    assert "<img" not in render_batch(7, batch) and "<b>" not in render_batch(7, batch)


def test_a_pane_that_waited_shows_its_wait_apart_from_ttft_and_rate() -> None:
    """Side by side, a pane that waited 2 s for a busy endpoint shows the model's own time to
    first token and speed, and the wait beside the total."""
    from types import SimpleNamespace

    from playground.templatetags.playground import live_status, response_status

    live = Batch(last_seq=4, tokens=30, elapsed_ms=3500, ttft_ms=500, waited_ms=2000)
    assert (
        live_status(live)
        == "Streaming · 30 tokens · TTFT 0.50 s · 30.0 tok/s · 3.50 s · waited 2.00 s"
    )
    assert 'data-seq="4"' in render_batch(7, live) and "waited 2.00 s" in render_batch(7, live)
    row = SimpleNamespace(
        output_tokens=30,
        usage_estimated=False,
        ttft_ms=500,
        tokens_per_s=30.0,
        total_ms=3500,
        waited_ms=2000,
        cost=None,
        cost_currency="",
        finish_reason="stop",
        status="done",
    )
    shown = response_status({"r": row, "active": False, "status_label": "Done"})
    assert shown == "Done · 30 tokens · TTFT 0.50 s · 30.0 tok/s · 3.50 s · waited 2.00 s"
    row.waited_ms = 0
    shown = response_status({"r": row, "active": False, "status_label": "Done"})
    assert "waited" not in shown
