"""A share link in the browser: the owner starts a comparison with a slowed Echo, makes a
link for their teams from the Share panel; a teammate opens it in a browser of their own
while the answers stream, watches them grow to the end, forks the session and lands in a
copy of their own showing the same answers."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import Membership, Role, Session, ShareLink, Team
from tests.e2e.test_comparison import set_pane

PROMPT = "one two three four five six seven eight nine ten"
REPEAT = 4
ANSWER = "Echo #1: " + " ".join([PROMPT] * REPEAT)


def sign_in(browser: Any, stack: Any, username: str) -> Any:
    from tests.conftest import PASSWORD

    page = browser.new_context(base_url=stack.url).new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    return page


def start_slow_comparison(page: Any) -> None:
    """Two Echo panes, each 40 words at 150 ms a word: about six seconds of streaming."""
    page.goto("/")
    panes = page.locator("section.pane")
    expect(panes).to_have_count(2)
    for index in (0, 1):
        set_pane(page, index, "Echo", "1.0", delay_ms="150", repeat=str(REPEAT))
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))


def test_a_teammate_watches_a_shared_session_stream_then_forks_it(
    page: Any, browser: Any, stack: Any, e2e_user: Any, django_user_model: Any
) -> None:
    from tests.conftest import PASSWORD

    teammate_user = django_user_model.objects.create_user("frank", "frank@example.com", PASSWORD)
    team = Team.objects.create(name="research")
    Membership.objects.create(team=team, user=e2e_user, role=Role.OWNER)
    Membership.objects.create(team=team, user=teammate_user, role=Role.MEMBER)
    teammate = sign_in(browser, stack, "frank")

    start_slow_comparison(page)
    page.get_by_role("button", name="Share").click()
    panel = page.get_by_role("region", name="Share this session")
    expect(panel.get_by_label("Signed-in members of my teams")).to_be_checked()
    panel.get_by_role("button", name="Create link").click()
    url = panel.locator("#share-url").input_value()
    assert re.fullmatch(re.escape(stack.url) + r"/shared/[A-Za-z0-9_-]{43}/", url), url
    expect(panel.locator("table.share-links")).to_contain_text("Active")
    assert ShareLink.objects.get().created_by_id == e2e_user.pk

    # The teammate opens it while both answers are still streaming.
    teammate.goto(url)
    expect(teammate.get_by_text("Shared by erin · read-only")).to_be_visible()
    streaming = teammate.locator("article[data-active] .text")
    expect(streaming.first).not_to_be_empty()
    partial = streaming.first.inner_text().strip()
    assert teammate.locator("article[data-active]").count() == 2, "it ended before being seen"
    assert partial and ANSWER.startswith(partial) and len(partial) < len(ANSWER)
    # Read-only: nothing to send, stop or pick, and no sidebar of the owner's sessions.
    assert teammate.locator("#compose, textarea, select").count() == 0
    assert teammate.get_by_role("button", name="Stop").count() == 0
    assert teammate.get_by_role("navigation", name="Sessions").count() == 0

    # The text grows to the end, live.
    expect(teammate.locator("article.status-done")).to_have_count(2, timeout=30_000)
    for index in (0, 1):
        pane = teammate.locator("section.pane").nth(index)
        assert pane.locator("article .text").last.inner_text().strip() == ANSWER
        expect(pane.locator(".status").last).to_contain_text("Done")

    # Forking lands in a copy of their own, with the same answers.
    teammate.get_by_role("button", name="Fork into my sessions").click()
    teammate.wait_for_url(re.compile(r"/s/\d+/$"))
    copy = Session.objects.get(pk=int(teammate.url.rstrip("/").rsplit("/", 1)[-1]))
    assert copy.owner_id == teammate_user.pk
    expect(teammate.locator("article.status-done")).to_have_count(2)
    for index in (0, 1):
        pane = teammate.locator("section.pane").nth(index)
        assert pane.locator("article .text").last.inner_text().strip() == ANSWER
    expect(teammate.get_by_role("button", name="Send")).to_be_visible()
    teammate.context.close()
