"""A person compares models in the browser: every answer streams into its own pane."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from playground.models import Response, Status

PROMPT = "one two three four five six seven eight nine ten"


def set_pane(page: Any, index: int, model: str, temperature: str, **params: str) -> None:
    pane = page.locator("section.pane").nth(index)
    (key,) = pane.get_by_label("Model").select_option(label=model)
    expect(pane).to_have_attribute("aria-label", model)
    # The new model's fields come from the server: wait until they are in (a details
    # opened before they land is replaced by a closed one).
    pane.page.wait_for_load_state("networkidle")
    # A person sees the new model's fields before typing into them.
    expect(pane.locator(".params")).to_have_attribute("data-model", key)
    pane.get_by_label("Temperature").fill(temperature)
    if params:
        more = pane.locator("details.more")
        if more.get_attribute("open") is None:
            more.locator("summary").click()
        expect(more).to_have_attribute("open", "")
    for name, value in params.items():
        pane.locator(f"[name$='-p-{name}']").fill(value)


def start_comparison(page: Any, *, delay_ms: str = "60", repeat: str = "3") -> None:
    """Two echo panes at different temperatures; Send; wait for the session page."""
    page.goto("/")
    panes = page.locator("section.pane")
    expect(panes).to_have_count(2)  # a new comparison starts with two panes
    for index, temperature in enumerate(("0.2", "1.0")):
        set_pane(page, index, "Echo", temperature, delay_ms=delay_ms, repeat=repeat)
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))


def expected(repeat: int, turn: int = 1) -> str:
    return f"Echo #{turn}: " + " ".join([PROMPT] * repeat)


def pane_text(page: Any, index: int) -> str:
    return str(page.locator("section.pane").nth(index).locator("article .text").last.inner_text())


def test_two_panes_stream_at_once_and_survive_a_reload(page: Any) -> None:
    start_comparison(page, delay_ms="60", repeat="3")
    first, second = (page.get_by_role("region", name="Echo").nth(i) for i in (0, 1))
    # Both panes show partial text while both are still streaming: side by side, live.
    expect(first.locator("article[data-active] .text")).not_to_be_empty()
    expect(second.locator("article[data-active] .text")).not_to_be_empty()
    assert first.locator("article[data-active]").count() == 1
    assert second.locator("article[data-active]").count() == 1

    page.reload()  # mid-answer: the text so far is shown, then it continues
    expect(page.locator("article[data-active]").first).to_be_visible()
    expect(page.locator("article.status-done")).to_have_count(2, timeout=20_000)
    for index in (0, 1):
        assert pane_text(page, index).strip() == expected(3)
        status = page.locator("section.pane").nth(index).locator(".status").last
        expect(status).to_contain_text("Done")
        expect(status).to_contain_text("tokens")
    assert sorted(Response.objects.values_list("status", flat=True)) == ["done", "done"]
    assert {r.text for r in Response.objects.all()} == {expected(3)}


def test_a_follow_up_goes_to_every_pane(page: Any) -> None:
    start_comparison(page, delay_ms="0", repeat="1")
    expect(page.locator("article.status-done")).to_have_count(2)
    page.get_by_label("Prompt").fill("again")
    page.get_by_label("Prompt").press("Control+Enter")
    expect(page.locator("article.status-done")).to_have_count(4)
    expect(page.get_by_label("Prompt")).to_have_value("")
    for index in (0, 1):
        assert pane_text(page, index).strip() == "Echo #2: again"


def test_stop_stops_one_pane_and_not_the_other(page: Any) -> None:
    start_comparison(page, delay_ms="80", repeat="4")
    first, second = (page.locator("section.pane").nth(i) for i in (0, 1))
    expect(first.locator("article[data-active] .text")).not_to_be_empty()
    first.get_by_role("button", name="Stop").click()
    expect(first.locator("article.status-stopped")).to_have_count(1, timeout=5_000)
    expect(first.locator(".status").last).to_contain_text("Stopped")
    partial = pane_text(page, 0).strip()
    assert partial and expected(4).startswith(partial) and partial != expected(4)
    expect(second.locator("article.status-done")).to_have_count(1, timeout=20_000)
    assert pane_text(page, 1).strip() == expected(4)


def test_bad_input_is_refused_and_kept(page: Any) -> None:
    page.goto("/")
    page.locator("section.pane").first.get_by_label("Temperature").fill("7")
    page.get_by_label("Prompt").fill("keep me")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert").first).to_contain_text("Temperature must be")
    expect(page.get_by_label("Prompt")).to_have_value("keep me")
    assert Response.objects.count() == 0


def test_a_stream_started_on_one_web_process_is_watched_live_on_the_other(
    page: Any, stack: Any
) -> None:
    start_comparison(page, delay_ms="60", repeat="3")
    other = page.context.new_page()
    other.goto(stack.web_urls[1] + urlsplit(page.url).path)
    assert other.url.startswith(stack.web_urls[1])
    expect(other.locator("article[data-active]").first).to_be_visible()
    expect(other.locator("article.status-done")).to_have_count(2, timeout=20_000)
    for index in (0, 1):
        text = other.locator("section.pane").nth(index).locator("article .text").last.inner_text()
        assert text.strip() == expected(3)


def test_a_pane_whose_worker_died_is_shown_interrupted(page: Any, stack: Any) -> None:
    # Only this test's own worker may take the turn: the shared ones are stopped for now.
    # (Paused workers would not do: one blocked in BRPOP could still receive the task.)
    shared = len(stack.workers)
    stack.stop_workers()
    doomed = stack.start_worker()
    try:
        start_comparison(page, delay_ms="100", repeat="5")
        expect(page.locator("article[data-active] .text").first).not_to_be_empty()
        doomed.kill()
        started = time.monotonic()
        expect(page.locator("article.status-interrupted")).to_have_count(2, timeout=12_000)
        assert time.monotonic() - started < 10.5
        expect(page.locator("article.status-interrupted .error").first).to_contain_text("worker")
        assert all(r.text for r in Response.objects.filter(status=Status.INTERRUPTED))
    finally:
        stack.stop_workers()
        for _ in range(shared):
            stack.start_worker()


def test_a_send_is_urlencoded_and_one_with_an_image_is_multipart(page: Any, tmp_path: Any) -> None:
    sent: list[str] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.headers.get("content-type", ""))
            if r.method == "POST" and r.url.endswith("send/")
            else None
        ),
    )
    start_comparison(page, delay_ms="0", repeat="1")
    expect(page.locator("article.status-done")).to_have_count(2)
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    page.get_by_label("Images").set_input_files(str(image))
    page.get_by_label("Prompt").fill("look")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("article.status-done")).to_have_count(4)
    for index in (0, 1):
        assert pane_text(page, index).strip() == "Echo #2: look [1 image]"
    # No file: the light urlencoded form; with a file: multipart, the image arrives.
    assert sent[0].startswith("application/x-www-form-urlencoded"), sent
    assert sent[1].startswith("multipart/form-data"), sent
    assert page.get_by_label("Images").evaluate("el => el.files.length") == 0
