"""The embedded default a new user finds: the real local model (SmolLM2-135M served by
llama.cpp, a server nobody here wrote) compared against itself at two temperatures and
against echo, through daphne, Celery, Redis and the database, in chromium."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import Response, Status
from tests.e2e.test_comparison import set_pane

LOCAL = "Local · SmolLM2-135M"
PROMPT = "What is the capital of France? Answer in one short sentence."


def test_local_model_at_two_temperatures_against_echo(page: Any) -> None:
    page.goto("/")
    panes = page.locator("section.pane")
    expect(panes).to_have_count(2)  # a new comparison: the local model against echo
    page.get_by_role("button", name="Add model").click()
    expect(panes).to_have_count(3)
    set_pane(page, 0, LOCAL, "0.2", max_tokens="48")
    set_pane(page, 1, LOCAL, "1.0", max_tokens="48")
    set_pane(page, 2, "Echo", "0.7")
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))

    # The server decodes one request at a time: the pane behind says so while it waits.
    expect(page.get_by_text(f"waiting for {LOCAL} — 1 ahead")).to_have_count(1, timeout=10_000)
    expect(page.locator("article.status-done")).to_have_count(3, timeout=60_000)

    local = page.get_by_role("region", name=LOCAL)
    expect(local).to_have_count(2)
    rows = {r.pane.position: r for r in Response.objects.select_related("pane")}
    for position in (0, 1):
        row = rows[position]
        assert row.status == Status.DONE
        assert row.text.strip(), "the local model answered nothing"
        assert "Echo" not in row.text
        # llama.cpp reports no usage in the stream: it is estimated, and says so.
        assert row.usage_estimated and row.output_tokens
        assert row.ttft_ms is not None and row.total_ms and row.total_ms >= row.ttft_ms
        status = local.nth(position).locator(".status").last
        expect(status).to_contain_text("Done")
        expect(status).to_contain_text("(estimated)")
        # What the pane shows is what was saved (rendered from Markdown).
        shown = " ".join(local.nth(position).locator("article .text").last.inner_text().split())
        words = [w for w in re.findall(r"\w+", row.text) if len(w) > 2][:3]
        assert all(w in shown for w in words), (shown, row.text)
    # One local pane waited for the other: its wait is shown apart from its TTFT.
    [waited] = [position for position in (0, 1) if rows[position].waited_ms]
    expect(local.nth(waited).locator(".status").last).to_contain_text(
        f"waited {rows[waited].waited_ms / 1000:.2f} s"
    )
    expect(local.nth(1 - waited).locator(".status").last).not_to_contain_text("waited")
    assert rows[2].text == f"Echo #1: {PROMPT}"
    assert Response.objects.filter(status=Status.DONE).count() == 3
    assert Response.objects.exclude(status=Status.DONE).count() == 0
    assert Response.objects.filter(pane__model_key="local:smollm2").count() == 2
