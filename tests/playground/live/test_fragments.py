"""The delta fragment is filled from stamps of its partials for speed; it must be exactly
what the template renders, escaping included (model output is untrusted)."""

from __future__ import annotations

import pytest
from django.template.loader import get_template

from playground.live.fragments import render_batch
from playground.live.response_log import Batch
from playground.templatetags.playground import live_status


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
def test_the_stamped_delta_is_the_template_s(batch: Batch) -> None:
    expected = get_template("playground/_response.html#delta").render(
        {
            "rid": 7,
            "text": batch.text,
            "reasoning": batch.reasoning,
            "seq": batch.last_seq,
            "elapsed": batch.elapsed_ms,
            "status": live_status(batch),
        }
    )
    assert render_batch(7, batch) == expected
    assert "<img" not in render_batch(7, batch) and "<b>" not in render_batch(7, batch)
    assert (
        'data-elapsed="' in expected
        if batch.elapsed_ms is not None
        else "data-elapsed" not in expected
    )


def test_model_options_are_the_template_s_for_every_variant() -> None:
    """Selected or not, a model whose credentials are missing (disabled, says what it
    needs), a name that must be escaped, and a pane's model no longer offered."""
    from types import SimpleNamespace

    from playground.templatetags.playground import model_options

    models = [
        SimpleNamespace(key="a", display_name="A <b>&", needs=""),
        SimpleNamespace(key="b", display_name="B", needs="B_KEY, B_SECRET"),
        SimpleNamespace(key='c"', display_name="C", needs=""),
    ]
    option = get_template("playground/_pane.html#model-option")
    expected = [
        option.render({"key": "gone", "name": "Old (no longer available)", "selected": True}),
        option.render({"key": "a", "name": "A <b>&", "selected": False, "missing": ""}),
        option.render({"key": "b", "name": "B", "missing": "B_KEY, B_SECRET"}),
        option.render({"key": 'c"', "name": "C", "selected": False}),
    ]
    assert model_options(models, "gone", "Old") == "\n".join(expected)
    assert expected[0] == '<option value="gone" selected>Old (no longer available)</option>'
    assert expected[2] == '<option value="b" disabled>B (needs B_KEY, B_SECRET)</option>'
    picked = model_options(models, 'c"', "C")
    assert '<option value="c&quot;" selected>C</option>' in picked
    assert "A &lt;b&gt;&amp;" in picked and "no longer available" not in picked


def test_a_pane_that_waited_shows_its_wait_apart_from_ttft_and_rate() -> None:
    """Side by side, a pane that waited 2 s for a busy endpoint shows the model's own time to
    first token and speed, and the wait beside the total."""
    from types import SimpleNamespace

    from playground.templatetags.playground import response_status

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
        started_at=1,
        key_label="team key 'research'",
    )
    shown = response_status({"r": row, "active": False, "status_label": "Done"})
    assert shown == (
        "Done · 30 tokens · TTFT 0.50 s · 30.0 tok/s · 3.50 s · waited 2.00 s · team key 'research'"
    )
    row.waited_ms = 0
    shown = response_status({"r": row, "active": False, "status_label": "Done"})
    assert "waited" not in shown
