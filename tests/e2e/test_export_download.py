"""A person compares two models, sees each finished answer's parameters and usage under its
status line as it ends (no reload), then downloads the session from Export ▾, as Markdown
and as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_comparison import PROMPT, expected, pane_text


def start_comparison(page: Any) -> None:
    """Two Echo panes at temperatures 0.2 and 1.0 answering at once; Send. Each pane's
    fields are filled once the Model picker's change has been answered (the fields are
    re-rendered then)."""
    page.goto("/")
    panes = page.locator("section.pane")
    expect(panes).to_have_count(2)
    for index, temperature in enumerate(("0.2", "1.0")):
        pane = panes.nth(index)
        with page.expect_response(re.compile(r"/pane/\d+/params/")):
            pane.get_by_label("Model").select_option(label="Echo")
        pane.get_by_label("Temperature").fill(temperature)
        pane.locator("details.more summary").click()
        pane.locator("[name$='-p-delay_ms']").fill("0")
        pane.locator("[name$='-p-repeat']").fill("2")
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))


def download(page: Any, link: str) -> tuple[str, str]:
    """The file a click on Export ▾ → ``link`` saves: its suggested name and its text."""
    menu = page.locator("details.export-menu")
    if menu.get_attribute("open") is None:
        menu.locator("summary", has_text="Export").click()
    with page.expect_download() as info:
        page.get_by_role("link", name=link).click()
    saved = info.value
    return saved.suggested_filename, Path(saved.path()).read_text()


def test_a_finished_comparison_shows_its_details_and_downloads(page: Any) -> None:
    start_comparison(page)
    expect(page.locator("article.status-done")).to_have_count(2, timeout=20_000)
    for index, temperature in enumerate(("0.2", "1")):  # 1.0 as a person reads it
        pane = page.locator("section.pane").nth(index)
        details = pane.locator("article dl.details").last
        expect(details).to_contain_text("Parameters")
        expect(details).to_contain_text(re.compile(rf"temperature {temperature}\b"))
        expect(details).to_contain_text(re.compile(r"Usage \d+ in · \d+ out tokens"))
        assert pane_text(page, index).strip() == expected(2)

    name, text = download(page, "Markdown (.md)")
    assert name.endswith(".md") and name.startswith("one-two-three")
    assert text.count("\n## Turn ") == 1
    assert re.findall(r"^### (.*)$", text, flags=re.M) == ["Pane 1: Echo", "Pane 2: Echo"]
    assert text.count(f"#### Answer\n\n{expected(2)}") == 2

    name, body = download(page, "JSON (.json)")
    data = json.loads(body)
    assert name.endswith(".json") and data["schema"] == "playground.session-export/1"
    (turn,) = data["turns"]
    assert [r["status"] for r in turn["responses"]] == ["done", "done"]
    assert [r["params"]["temperature"] for r in turn["responses"]] == [0.2, 1.0]
    assert all(r["text"] == expected(2) for r in turn["responses"])
    assert "erin@example.com" not in body
