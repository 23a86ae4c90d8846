"""A person adds their own OpenAI-compatible endpoint on the Your endpoints page, tests the
connection, and compares one of its models against echo: the key they typed goes to their
endpoint's URL only, and is never shown back."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import CustomEndpoint

KEY = "sk-own-gateway-7c1e5a9b3d2f"


def test_an_own_endpoint_is_saved_tested_and_compared(page: Any, stack: Any) -> None:
    gateway = f"{stack.vendors.url}/v1"
    page.goto("/")
    page.get_by_role("link", name="Your endpoints").click()
    page.wait_for_url(re.compile(r"/endpoints/$"))

    # A private address is refused with a sentence, and what was typed stays (but the key).
    page.get_by_label("Name").fill("Team gateway")
    page.get_by_label("Base URL").fill("http://10.1.2.3/v1")
    page.get_by_label(re.compile("API key")).fill(KEY)
    page.get_by_label(re.compile("Model ids")).fill("team/gpt-4.1-mini")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_text(re.compile("resolves to a private or local address"))).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Team gateway")
    expect(page.get_by_label(re.compile("API key"))).to_have_value("")
    assert not CustomEndpoint.objects.exists()

    page.get_by_label("Base URL").fill(gateway)
    page.get_by_label(re.compile("API key")).fill(KEY)
    page.get_by_role("button", name="Add endpoint").click()
    row = page.locator("table.endpoint-list tr", has_text="Team gateway")
    expect(row).to_contain_text(gateway)
    expect(row).to_contain_text("…3d2f")  # the hint, never the key
    assert KEY not in page.content()

    row.get_by_role("button", name="Test connection to Team gateway").click()
    expect(row.get_by_role("status")).to_contain_text(
        "Team gateway · team/gpt-4.1-mini: connected", timeout=20_000
    )

    page.goto("/")
    panes = page.locator("section.pane")
    panes.nth(0).get_by_label("Model").select_option(label="Team gateway · team/gpt-4.1-mini")
    panes.nth(1).get_by_label("Model").select_option(label="Echo")
    page.get_by_label("Prompt").fill("What is the capital of France?")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    own = page.get_by_role("region", name="Team gateway · team/gpt-4.1-mini")
    expect(own.locator("article.status-done .text")).to_have_text(
        "Paris is the capital of France.", timeout=30_000
    )
    expect(page.get_by_role("region", name="Echo").locator("article.status-done")).to_have_count(1)

    sent = [r for r in stack.vendors.requests if r["body"].get("model") == "team/gpt-4.1-mini"]
    assert sent, "the gateway was never called"
    for request in sent:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in page.content()
