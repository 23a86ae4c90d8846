"""Keys in the browser: a person adds their own key on the Keys page and compares with it;
a team admin adds a key for the team, and a teammate working in that team sees their pane
answered with the team key. Each key goes to its vendor, and no page shows it back."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import Credential, Response

OWN = "sk-proj-erin-own-key-4f1c9a7b"
TEAM = "sk-ant-research-team-key-8d2e6f03"


def sign_in(browser: Any, stack: Any, username: str) -> Any:
    from tests.conftest import PASSWORD

    page = browser.new_context(base_url=stack.url).new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    return page


def pick_provider(page: Any, provider: str) -> None:
    """Pick a provider and wait for its fields to be drawn (typed before, they would go)."""
    (value,) = page.get_by_label("Provider").select_option(label=provider)
    expect(page.locator("#key-fields input[name=fields_for]")).to_have_value(value)


def add_key(page: Any, provider: str, label: str, secret: str) -> None:
    pick_provider(page, provider)
    page.get_by_label("Label").fill(label)
    page.get_by_label(re.compile("^API key")).fill(secret)
    page.get_by_role("button", name="Add key").click()
    row = page.locator("table.key-list tr", has_text=label)
    try:
        expect(row).to_contain_text("…" + secret[-4:])
    except AssertionError:
        raise AssertionError(page.locator("main").inner_text()) from None
    assert secret not in page.content()


def compare(page: Any, model: str) -> Any:
    page.goto("/")
    panes = page.locator("section.pane")
    panes.nth(0).get_by_label("Model").select_option(label=model)
    panes.nth(1).get_by_label("Model").select_option(label="Echo")
    page.get_by_label("Prompt").fill("Say something short.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    pane = page.get_by_role("region", name=model)
    expect(pane.locator("article.status-done")).to_have_count(1, timeout=30_000)
    return pane.locator(".status").last


def test_a_person_adds_a_key_and_compares_with_it(page: Any, stack: Any) -> None:
    page.get_by_role("link", name="Keys").click()
    page.wait_for_url(re.compile(r"/keys/$"))
    # A key with a space in it is refused, and nothing is saved or shown back.
    pick_provider(page, "OpenAI")
    page.get_by_label("Label").fill("work")
    page.get_by_label(re.compile("^API key")).fill("sk bad key")
    page.get_by_role("button", name="Add key").click()
    expect(page.locator("#keys-main")).to_contain_text("cannot contain spaces")
    assert not Credential.objects.exists()
    add_key(page, "OpenAI", "work", OWN)

    status = compare(page, "OpenAI · GPT-4.1 mini")

    expect(status).to_contain_text("your key 'work'")
    sent = [r for r in stack.vendors.requests if r["path"].startswith("/v1/chat/completions")]
    assert sent[-1]["headers"]["Authorization"] == f"Bearer {OWN}"
    assert OWN not in page.content()


def test_a_team_admin_shares_a_key_and_a_teammate_answers_with_it(
    page: Any, browser: Any, stack: Any, django_user_model: Any
) -> None:
    from tests.conftest import PASSWORD

    django_user_model.objects.create_user("tom", "tom@example.com", PASSWORD)
    page.goto("/teams/")
    page.get_by_label("Name").fill("research")
    page.get_by_role("button", name="Create team").click()
    page.wait_for_url(re.compile(r"/teams/\d+/$"))
    page.get_by_label("Username or email").fill("tom@example.com")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#team-main")).to_contain_text("tom")
    page.get_by_role("link", name="Team keys").click()
    add_key(page, "Anthropic", "research", TEAM)

    teammate = sign_in(browser, stack, "tom")
    teammate.get_by_label("Team to work in").select_option(label="research")
    teammate.get_by_role("button", name="Switch").click()
    expect(teammate.get_by_label("Team to work in")).to_have_value(
        str(Credential.objects.get().team_id)
    )
    status = compare(teammate, "Anthropic · Claude Haiku 4.5")

    expect(status).to_contain_text("team key 'research'")
    row = Response.objects.get(model_key__startswith="anthropic:")
    assert (row.key_scope, row.turn.session.owner.username) == ("team", "tom")
    sent = [r for r in stack.vendors.requests if r["path"].startswith("/v1/messages")]
    assert sent[-1]["headers"]["x-api-key"] == TEAM
    assert TEAM not in teammate.content()
