"""A person keeps two Echo panes as a comparison set and starts a new comparison from it in
one click: the same models, parameters, system prompt and "Same parameters" toggle are
filled in, nothing is sent until Send, and Send is answered."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import ComparisonSet, Response

PROMPT = "red green blue"


def params_of(pane: Any) -> None:
    """Opens the pane's other parameters (folded by default)."""
    more = pane.locator("details.more")
    if more.get_attribute("open") is None:
        more.locator("summary").click()


def test_save_a_set_start_from_it_in_one_click_and_send(page: Any, stack: Any) -> None:
    page.goto("/")
    first, second = (page.locator("section.pane").nth(i) for i in (0, 1))
    (key,) = first.get_by_label("Model").select_option(label="Echo")
    expect(first.locator(".params")).to_have_attribute("data-model", key)
    expect(second).to_have_attribute("aria-label", "Echo")

    # Same parameters: what is typed in one pane appears in the other.
    page.get_by_label("Same parameters for every pane").check()
    first.get_by_label("Temperature").fill("0.4")
    expect(second.get_by_label("Temperature")).to_have_value("0.4")
    for pane in (first, second):
        params_of(pane)
    second.locator("[name$='-p-repeat']").fill("2")
    second.locator("[name$='-p-delay_ms']").fill("30")
    expect(first.locator("[name$='-p-repeat']")).to_have_value("2")
    expect(first.locator("[name$='-p-delay_ms']")).to_have_value("30")
    page.locator("details", has_text="System prompt").locator("summary").click()
    page.get_by_label("System instructions").fill("Answer briefly.")

    page.get_by_role("button", name="Save as set").click()
    box = page.locator("#save-set")
    expect(box).to_be_visible()
    box.get_by_label("Name").fill("Echo duo")
    box.get_by_role("button", name="Save set").click()
    expect(box.get_by_role("status")).to_contain_text("Saved “Echo duo”.")
    saved = ComparisonSet.objects.get()
    assert saved.same_params is True

    box.get_by_role("status").get_by_role("link", name="Sets").click()
    page.wait_for_url(stack.url + "/sets/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.get_by_role("button", name="Copy link to Echo duo")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"{stack.url}/?set={saved.pk}"

    page.get_by_role("link", name="Start Echo duo").click()  # one click
    page.wait_for_url(f"{stack.url}/?set={saved.pk}")
    panes = page.locator("section.pane")
    expect(panes).to_have_count(2)
    for index in (0, 1):
        pane = panes.nth(index)
        expect(pane).to_have_attribute("aria-label", "Echo")
        expect(pane.get_by_label("Temperature")).to_have_value("0.4")
        expect(pane.locator("[name$='-p-repeat']")).to_have_value("2")
        expect(pane.locator("[name$='-p-delay_ms']")).to_have_value("30")
    expect(page.get_by_label("System instructions")).to_have_value("Answer briefly.")
    expect(page.get_by_label("Same parameters for every pane")).to_be_checked()
    assert Response.objects.count() == 0  # nothing sent yet

    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    expect(page.locator("article.status-done")).to_have_count(2)
    for index in (0, 1):
        text = panes.nth(index).locator("article .text").last.inner_text()
        assert text.strip() == f"Echo #1: {PROMPT} {PROMPT}"
    rows = Response.objects.order_by("pane__position")
    first_params, second_params = (r.params for r in rows)
    assert first_params == second_params  # Echo's default Max tokens too
    assert {"temperature": 0.4, "repeat": 2, "delay_ms": 30}.items() <= first_params.items()
    assert {r.turn.system_prompt for r in rows} == {"Answer briefly."}
