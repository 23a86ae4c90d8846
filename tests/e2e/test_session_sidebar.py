"""A person keeps their sessions in order from the sidebar: renames one there and one in the
page's title, pins one, deletes one and undoes it, duplicates one, and finds a word from an
answer with the search box, highlighted."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone
from playwright.sync_api import expect

from playground.models import Pane, Response, Session, Status, Turn


def conversation(owner: Any, title: str, answer: str, minutes_ago: int) -> Session:
    session = Session.objects.create(owner=owner, title=title)
    pane = Pane.objects.create(session=session, position=0, model_key="echo")
    turn = Turn.objects.create(session=session, index=0, prompt=f"Tell me about {title}")
    Response.objects.create(
        turn=turn,
        pane=pane,
        model_key="echo",
        display_name="Echo",
        status=Status.DONE,
        text=answer,
    )
    Session.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return session


def titles(page: Any) -> list[str]:
    return [
        t.strip()
        for t in page.locator("#session-list .session-item .session-title").all_inner_texts()
    ]


def act(page: Any, session: Session, action: str) -> None:
    item = page.locator(f"#session-{session.pk}")
    item.locator("summary").click()
    item.get_by_role("button", name=action, exact=True).click()


def test_rename_pin_delete_undo_duplicate_and_search(page: Any, e2e_user: Any) -> None:
    holiday = conversation(
        e2e_user, "Holiday planning", "Take the ferry to Zanzibar in the morning.", 30
    )
    report = conversation(e2e_user, "Quarterly report", "Revenue grew by four percent.", 5)
    page.goto("/")
    expect(page.locator("#session-list .session-item")).to_have_count(2)
    assert titles(page) == ["Quarterly report", "Holiday planning"]
    expect(page.locator(f"#session-{report.pk} .session-meta")).to_contain_text("Echo · 5 min ago")

    # Rename in the sidebar: Enter saves.
    act(page, holiday, "Rename")
    field = page.get_by_label("Title of 'Holiday planning'")
    expect(field).to_be_focused()  # the page has settled the field (app.js focuses it)
    field.fill("Summer trip")
    field.press("Enter")
    expect(page.locator(f"#session-{holiday.pk} .session-title")).to_have_text("Summer trip")

    # Pin: it comes first.
    act(page, holiday, "Pin")
    expect(page.locator("#session-list .session-item").first).to_have_id(f"session-{holiday.pk}")
    expect(page.locator(f"#session-{holiday.pk} .pin")).to_be_visible()
    assert titles(page) == ["Pinned · Summer trip", "Quarterly report"]

    # Delete, then Undo: it is back where it was.
    act(page, report, "Delete")
    notice = page.locator("#session-notice")
    expect(notice).to_contain_text("Deleted 'Quarterly report'.")
    expect(page.locator(f"#session-{report.pk}")).to_have_count(0)
    notice.get_by_role("button", name="Undo").click()
    expect(notice).to_have_text("Restored 'Quarterly report'.")
    expect(page.locator("#session-list .session-item")).to_have_count(2)
    assert titles(page) == ["Pinned · Summer trip", "Quarterly report"]
    assert Session.objects.get(pk=report.pk).deleted_at is None

    # Duplicate: the copy opens; rename it in the page's title.
    act(page, holiday, "Duplicate")
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    copy = Session.objects.exclude(pk__in=[holiday.pk, report.pk]).get()
    assert page.url.endswith(f"/s/{copy.pk}/")
    heading = page.locator("#session-title")
    expect(heading.locator(".session-name")).to_have_text("Summer trip (copy)")
    heading.get_by_role("button", name="Rename this session").click()
    title_field = page.get_by_label("Title of 'Summer trip (copy)'")
    expect(title_field).to_be_focused()
    title_field.fill("Ferry notes")
    title_field.press("Enter")  # saves the title; the comparison is not sent
    expect(heading.locator(".session-name")).to_have_text("Ferry notes")
    expect(page.locator(f"#session-{copy.pk} .session-title")).to_have_text("Ferry notes")
    assert Turn.objects.filter(session=copy).count() == 1

    # Search a word that is only in the answers: both sessions, the word marked.
    search = page.get_by_label("Search your sessions")
    search.fill("zanzibar")
    results = page.locator("#session-list .search-result")
    expect(results).to_have_count(2)
    expect(results.locator(".snippet mark").first).to_have_text("Zanzibar")
    assert sorted(results.locator(".session-title").all_inner_texts()) == sorted(
        ["Pinned · Summer trip", "Ferry notes"]
    )
    # Escape clears it and brings the list back.
    search.press("Escape")
    expect(page.locator("#session-list .session-item")).to_have_count(3)
    expect(search).to_have_value("")
