"""A stranger cannot lock the owner out (issue 15; OWASP's device cookies): while guesses
from elsewhere have locked Erin's account for strangers, a new browser with her right
password is told so and when to try again, and Erin signs in from the browser she used
before. The limits are the run's defaults (10 failures a 15-minute window)."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.conftest import PASSWORD

GUESSES = 30
CSRF_FORM = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LOCKED_FOR_STRANGERS = re.compile(
    r"^Too many failed sign-ins for this account; try again in \d+ minutes?\."
    r" A browser you signed in with before can sign in now\.$"
)


def guess(url: str, username: str, password: str) -> int:
    """One try from a client that never signed in, as a script makes it."""
    with httpx.Client(base_url=url, timeout=30) as client:
        token = CSRF_FORM.search(client.get("/login/").text)
        assert token is not None
        form = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
        return client.post("/login/", data=form).status_code


def away_from_a_window_end(span: int = 900, margin: int = 30) -> None:
    """Wait, if need be, so that the test does not straddle two of the limit's windows."""
    left = span - time.time() % span
    if left < margin:
        time.sleep(left + 1)


def test_the_owner_signs_in_from_her_browser_while_strangers_are_locked_out(
    page: Any, browser: Any, stack: Any, e2e_user: Any
) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/"))
    away_from_a_window_end()

    # Guesses at Erin's password, all at once, through both web processes.
    with ThreadPoolExecutor(max_workers=GUESSES) as pool:
        statuses = list(
            pool.map(
                lambda n: guess(stack.web_urls[n % 2], e2e_user.username, f"guess-{n}"),
                range(GUESSES),
            )
        )
    assert Counter(statuses) == {200: 10, 429: GUESSES - 10}

    # A browser she never used, with the right password: refused, and told until when.
    stranger = browser.new_context(base_url=stack.url).new_page()
    stranger.goto("/login/")
    stranger.get_by_label("Username").fill(e2e_user.username)
    stranger.get_by_label("Password").fill(PASSWORD)
    stranger.get_by_role("button", name="Sign in").click()
    expect(stranger.get_by_role("alert")).to_have_text(LOCKED_FOR_STRANGERS)
    assert stranger.url == stack.url + "/login/"

    # Her own browser signs in.
    page.get_by_label("Username").fill(e2e_user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    stranger.context.close()
