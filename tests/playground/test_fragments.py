"""The delta fragment is built by hand for speed; it must be exactly what the template
renders, escaping included (model output is untrusted)."""

from __future__ import annotations

import pytest
from django.template.loader import get_template

from playground.fragments import render_batch
from playground.panelog import Batch


@pytest.mark.parametrize(
    "batch",
    [
        Batch(last_seq=3, text='<img src=x onerror="alert(1)"> & \'q\'', tokens=4, elapsed_ms=80,
              ttft_ms=20),
        Batch(last_seq=9, text="", reasoning="<b>think</b>", tokens=None, elapsed_ms=None),
        Batch(last_seq=1, message="waiting for Local · SmolLM2-135M — 1 ahead"),
    ],
)  # fmt: skip
def test_the_hand_built_delta_is_the_template_s(batch: Batch) -> None:
    template = get_template("playground/_response.html#delta")
    assert render_batch(7, batch) == template.render({"rid": 7, "b": batch})
    assert "<img" not in render_batch(7, batch) and "<b>" not in render_batch(7, batch)
