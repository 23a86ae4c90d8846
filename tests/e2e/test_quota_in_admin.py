"""An admin sets a person's quota in Django admin; the person's next Send is refused with
the sentence that names the limit, what is left and when it resets, and their prompt stays
in the box."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from playground.models import Quota, Turn
from tests.e2e.test_comparison import set_pane


def test_an_admin_sets_a_quota_and_the_person_is_stopped_at_it(
    page: Any, browser: Any, stack: Any, e2e_user: Any, django_user_model: Any
) -> None:
    from tests.conftest import PASSWORD

    django_user_model.objects.create_superuser("ada", "ada@example.com", PASSWORD)
    admin = browser.new_context(base_url=stack.url).new_page()
    admin.goto("/admin/login/?next=/admin/playground/quota/add/")
    admin.get_by_label("Username").fill("ada")
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.wait_for_url(re.compile(r"/admin/playground/quota/add/$"))
    admin.get_by_label("Scope").select_option(label="Person")
    admin.get_by_label("User").select_option(label="erin")
    admin.get_by_label("Requests per day").fill("1")
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.locator(".messagelist")).to_contain_text("was added successfully")
    assert Quota.objects.get(user=e2e_user).requests_per_day == 1

    # The first Send fits; the second is refused, and nothing of it is lost.
    page.goto("/")
    panes = page.locator("section.pane")
    expect(panes).to_have_count(2)  # a new comparison starts with two panes
    panes.nth(1).get_by_role("button", name="Remove").click()
    expect(panes).to_have_count(1)
    set_pane(page, 0, "Echo", "0.5")
    page.get_by_label("Prompt").fill("first question")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    expect(page.locator("article.status-done")).to_have_count(1, timeout=30_000)
    page.get_by_label("Prompt").fill("second question")
    page.get_by_role("button", name="Send").click()
    errors = page.locator("#compose-errors")
    expect(errors).to_contain_text("Your limit is 1 answer a day; 0 left")
    expect(errors).to_contain_text("It resets at midnight")
    expect(page.get_by_label("Prompt")).to_have_value("second question")
    assert Turn.objects.count() == 1
