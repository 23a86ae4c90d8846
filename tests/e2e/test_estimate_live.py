"""The composer's estimate in the browser: shown on load, asked again as the person types,
picks or adds a model, and after Send; never while answers stream."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

TOKENS = re.compile(r"At most (?:\$[\d.,]+ and )?([\d,]+) tokens for this turn")


def tokens_shown(page: Any) -> int:
    match = TOKENS.search(page.locator("#estimate").inner_text())
    assert match, page.locator("#estimate").inner_text()
    return int(match.group(1).replace(",", ""))


def test_the_estimate_follows_the_composer(page: Any) -> None:
    page.goto("/")
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text("tokens for this turn")  # on load, with no prompt
    empty = tokens_shown(page)

    page.get_by_label("Prompt").fill("word " * 400)
    expect(estimate).not_to_contain_text(f"{empty:,} tokens")
    typed = tokens_shown(page)
    assert typed > empty

    page.get_by_role("button", name="Add model").click()
    expect(page.locator("section.pane")).to_have_count(3)
    expect(estimate).not_to_contain_text(f"{typed:,} tokens")
    assert tokens_shown(page) > typed

    # Sent: the estimate is asked again on the session's page; while the answers stream
    # into the panes, it is not asked for again.
    for index in range(3):
        pane = page.locator("section.pane").nth(index)
        pane.get_by_label("Model").select_option(label="Echo")
        expect(pane.locator(".params")).to_have_attribute("data-model", "echo")
        pane.locator("details.more summary").click()
        pane.locator("[name$='-p-delay_ms']").fill("80")
    page.get_by_label("Prompt").fill("one two three four five six seven eight nine ten")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/estimate/" in r.url else None)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    expect(estimate).to_contain_text("tokens for this turn")
    expect(page.locator("article[data-active]").first).to_be_visible()
    streaming = len(requests)
    expect(page.locator("article[data-active]")).to_have_count(0)
    page.wait_for_timeout(300)
    assert len(requests) == streaming
