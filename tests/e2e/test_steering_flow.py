"""Steering a comparison in the browser: a follow-up to one pane only, regenerate, continue
from a chosen answer, the context policy, fork from a turn, and a rematch."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import Response, Session
from tests.e2e.test_comparison import PROMPT, start_comparison


def pane(page: Any, index: int) -> Any:
    return page.locator("section.pane").nth(index)


def last_text(page: Any, index: int) -> str:
    return str(pane(page, index).locator("article:not(.replaced) .text").last.inner_text()).strip()


def send(page: Any, prompt: str) -> None:
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_label("Prompt")).to_have_value("")


def test_steer_a_comparison(page: Any) -> None:
    start_comparison(page, delay_ms="0", repeat="1")
    expect(page.locator("article.status-done")).to_have_count(2)

    # A follow-up to the first pane only: the second sits it out.
    pane(page, 1).get_by_label("Ask").uncheck()
    send(page, "second")
    expect(pane(page, 0).locator("article.status-done")).to_have_count(2)
    assert last_text(page, 0) == "Echo #2: second"
    expect(pane(page, 1).locator("article")).to_have_count(1)

    # Both again: the second model was never asked "second", and is not told it was.
    pane(page, 1).get_by_label("Ask").check()
    send(page, "third")
    expect(page.locator("article.status-done")).to_have_count(5)
    assert last_text(page, 0) == "Echo #3: third"
    assert last_text(page, 1) == "Echo #2: third"

    # Regenerate the second pane's answer: the old one folds away, the new one follows it.
    pane(page, 1).locator("article").last.get_by_role("button", name="Regenerate").click()
    expect(pane(page, 1).locator("article.replaced")).to_have_count(1)
    expect(pane(page, 1).locator("article:not(.replaced).status-done")).to_have_count(2)
    expect(pane(page, 1).locator("article.replaced details.earlier > summary")).to_contain_text(
        "Earlier answer"
    )
    assert last_text(page, 1) == "Echo #2: third"

    # Continue from the first pane's answer, with that model only.
    answer = pane(page, 0).locator("article").last
    answer.get_by_role("button", name="… with this model only").click()
    expect(pane(page, 0).locator("article.chosen")).to_have_count(1)
    expect(pane(page, 1).get_by_label("Ask")).not_to_be_checked()
    expect(pane(page, 0).get_by_label("Ask")).to_be_checked()

    # The policy is picked at the composer; "all answers" offers leaving one out.
    leave_out = (
        pane(page, 1)
        .locator("article")
        .first.get_by_role("button", name="Leave out of shared history")
    )
    expect(leave_out).to_be_hidden()
    page.get_by_label("What the models see of the conversation").select_option("all")
    expect(leave_out).to_be_visible()
    leave_out.click()
    expect(pane(page, 1).locator("article.excluded")).to_have_count(1)
    session = Session.objects.latest("pk")
    assert session.context_policy == "all"
    assert Response.objects.filter(excluded=True).count() == 1

    # Fork from the first turn: a new session with that turn only.
    pane(page, 0).locator("article").first.get_by_role("button", name="Fork from here").click()
    page.wait_for_url(re.compile(rf"/s/(?!{session.pk}/)\d+/$"))
    expect(page.locator("h1")).to_contain_text("(fork at turn 1)")
    expect(page.locator("article")).to_have_count(2)
    expect(pane(page, 0).locator("article .text")).to_have_text(f"Echo #1: {PROMPT}")


def test_rematch_a_session_against_another_model(page: Any) -> None:
    start_comparison(page, delay_ms="0", repeat="1")
    expect(page.locator("article.status-done")).to_have_count(2)
    send(page, "second")
    expect(page.locator("article.status-done")).to_have_count(4)
    page.locator("details.rematch summary").click()
    page.get_by_label("Rematch model 1").select_option(label="Echo")
    page.get_by_role("button", name="Start the rematch").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    expect(page.locator("h1")).to_contain_text("Rematch:")
    expect(page.locator("section.pane")).to_have_count(3)
    # The new pane answers both turns, in order, beside the old answers.
    expect(pane(page, 2).locator("article.status-done")).to_have_count(2, timeout=20_000)
    assert last_text(page, 2) == "Echo #2: second"
    assert last_text(page, 0) == "Echo #2: second"
