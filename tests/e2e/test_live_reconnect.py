"""A page keeps every word of a streaming answer, once, whatever happens to its websocket: a
reload mid-stream, or the socket closed with each code a browser can see. The page's text is
recorded at every message it swaps in (and at every load): each record is a beginning of the
answer the upstream sent (nothing doubled while streaming), and the pane ends with exactly
that answer (nothing lost).

The socket is closed by Playwright standing between the page and daphne
(``page.route_web_socket``): the page sees the close code given, daphne a closed socket."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_comparison import set_pane

WORDS = " ".join(f"w{n:02d}" for n in range(1, 41))  # each word once: a doubled delta shows
ANSWER = f"Echo #1: {WORDS}"

RECORD = """
(() => {
  function record() {
    document.querySelectorAll("article[data-response] .text").forEach((el) => {
      window.recordText(el.closest("article").dataset.response, el.textContent);
    });
  }
  document.addEventListener("DOMContentLoaded", record);
  document.addEventListener("htmx:wsAfterMessage", record);
})();
"""


@pytest.fixture
def recorded(page: Any) -> dict[str, list[str]]:
    """Every text each response showed on the page, in order, across reloads."""
    texts: dict[str, list[str]] = {}
    page.expose_function("recordText", lambda rid, text: texts.setdefault(rid, []).append(text))
    page.add_init_script(RECORD)
    return texts


def start(page: Any, new_comparison: str = "/") -> None:
    """Two Echo panes, 40 words at 120 ms a word: about five seconds of streaming."""
    page.goto(new_comparison)
    expect(page.locator("section.pane")).to_have_count(2)
    for index in (0, 1):
        set_pane(page, index, "Echo", "1.0", delay_ms="120", repeat="1")
    page.get_by_label("Prompt").fill(WORDS)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    expect(page.locator("article[data-active] .text").first).not_to_be_empty()


def assert_whole_and_once(page: Any, texts: dict[str, list[str]]) -> None:
    expect(page.locator("article.status-done")).to_have_count(2, timeout=20_000)
    finals = page.locator("article.status-done .text").all_inner_texts()
    assert [t.strip() for t in finals] == [ANSWER, ANSWER]
    assert len(texts) == 2
    for rid, seen in texts.items():
        assert seen, rid
        for text in seen:
            assert ANSWER.startswith(text.strip()), f"response {rid} showed {text!r}"
        assert seen[-1].strip() == ANSWER


def test_a_reload_mid_stream_loses_and_doubles_nothing(
    page: Any, recorded: dict[str, list[str]]
) -> None:
    start(page)
    page.reload()
    assert page.locator("article[data-active]").count() >= 1, "it ended before the reload"
    assert_whole_and_once(page, recorded)
    shown = [len(t) for seen in recorded.values() for t in seen]
    assert min(shown) < len(ANSWER)  # some records were taken mid-stream


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1011, 1012, 4408, 4429, 4500])
def test_a_socket_closed_mid_stream_resumes_from_what_the_page_shows(
    page: Any, recorded: dict[str, list[str]], code: int
) -> None:
    sockets: list[Any] = []

    def through(ws: Any) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/sessions/\d+/$"), through)
    start(page)
    assert page.locator("article[data-active]").count() == 2, "it ended before the close"
    sockets[0].close(code=code, reason="test")
    # The page reconnects by itself and follows from where it stood.
    deadline = time.monotonic() + 10
    while len(sockets) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(sockets) >= 2, f"no reconnection after {code}"
    assert_whole_and_once(page, recorded)


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        (4404, "You no longer have access to this session."),
        (4409, "you have too many playground pages open. Close some, then reload this one."),
    ],
)
def test_a_socket_closed_for_good_says_why_and_a_reload_shows_the_whole_answer(
    page: Any, recorded: dict[str, list[str]], code: int, sentence: str
) -> None:
    sockets: list[Any] = []

    def through(ws: Any) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/sessions/\d+/$"), through)
    start(page)
    sockets[0].close(code=code, reason="test")
    expect(page.locator("#connection")).to_contain_text(sentence)
    page.wait_for_timeout(1500)
    assert len(sockets) == 1  # it did not reconnect
    page.reload()
    assert_whole_and_once(page, recorded)
