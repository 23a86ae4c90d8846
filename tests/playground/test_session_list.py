"""The sidebar's sessions: pinned first then newest, with their models and time, a page of
50 and Show more; rename, pin, delete with undo within the window, purge after it, and
duplicate. Every URL is the owner's alone: teammates, team admins and outsiders are told
the session is missing (404), anonymous people are sent to sign in."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground import session_list
from playground.live import response_log
from playground.models import Pane, Response, Session, Status, Turn
from playground.tasks import purge_deleted_session
from tests.playground.helpers import make_turn
from tests.playground.team_personas import Research, browser, research_team

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def on_page(session: Session) -> dict[str, str]:
    """The headers htmx sends from the session's own page."""
    return {**HTMX, "HTTP_HX_CURRENT_URL": f"http://testserver/s/{session.pk}/"}


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def sidebar_titles(page: str) -> list[str]:
    """The titles the sidebar lists, in order."""
    return [
        html.unescape(t)
        for t in re.findall(
            r'<li id="session-\d+" class="session-item[^"]*">\s*<a [^>]*>\s*'
            r'<span class="session-title">(?:<span class="pin"[^>]*>Pinned · </span>)?(.*?)</span>',
            page,
            flags=re.DOTALL,
        )
    ]


def session(owner: Any, title: str, minutes_ago: int = 0, **fields: Any) -> Session:
    row = Session.objects.create(owner=owner, title=title, **fields)
    Session.objects.filter(pk=row.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    row.refresh_from_db()
    return row


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


# ------------------------------------------------------------------ the list


def test_pinned_first_then_newest_with_models_and_time(owner: Any, owner_client: Any) -> None:
    old = session(owner, "Old one", minutes_ago=60 * 24 * 40)
    session(owner, "Recent", minutes_ago=5)
    session(owner, "Pinned long ago", minutes_ago=60 * 24 * 400, pinned=True)
    session(owner, "Gone", minutes_ago=1, deleted_at=timezone.now())
    Pane.objects.create(session=old, position=0, model_key="echo")
    Pane.objects.create(session=old, position=1, model_key="local:smollm2")
    Pane.objects.create(session=old, position=2, model_key="echo", removed=True)

    page = owner_client.get("/").content.decode()

    assert sidebar_titles(page) == ["Pinned long ago", "Recent", "Old one"]
    assert "Gone" not in page
    item = page[page.index(f'id="session-{old.pk}"') :]
    item = item[: item.index("</li>")]
    assert "Echo, Local · SmolLM2-135M</span>" in item  # the removed pane is not listed
    assert "5 min ago" in page
    local = timezone.localtime(old.updated_at)
    assert f"{local.day} {local:%b}" in item


def test_the_page_of_a_session_marks_it_current(owner: Any, owner_client: Any) -> None:
    first, second = session(owner, "First"), session(owner, "Second")
    page = owner_client.get(reverse("session", args=[second.pk])).content.decode()
    assert f'<a href="/s/{second.pk}/" aria-current="page">' in page
    assert f'<a href="/s/{first.pk}/">' in page


def test_show_more_goes_on_where_the_page_ended(owner: Any, owner_client: Any) -> None:
    for number in range(60):
        session(owner, f"Session number {number}", minutes_ago=number)
    session(owner, "Pinned one", minutes_ago=999, pinned=True)

    page = owner_client.get("/").content.decode()
    first = sidebar_titles(page)
    assert first[:2] == ["Pinned one", "Session number 0"]
    assert len(first) == 50
    more = re.search(r'hx-get="(/sessions/\?after=[^"]+)"', page)
    assert more is not None

    rest_page = owner_client.get(html.unescape(more.group(1)), **HTMX).content.decode()
    rest = sidebar_titles(rest_page)
    assert rest == [f"Session number {n}" for n in range(49, 60)]
    assert "Show more" not in rest_page


def test_a_cursor_this_page_never_gave_is_a_sentence(owner_client: Any) -> None:
    response = owner_client.get("/sessions/?after=nonsense", **HTMX)
    assert response.status_code == 200
    assert session_list.BAD_CURSOR in text(response)


# ------------------------------------------------------------------ who reaches what


def session_urls(target: Session) -> list[tuple[str, str, dict[str, str]]]:
    pk = target.pk
    return [
        ("get", reverse("session_rename", args=[pk]), {}),
        ("post", reverse("session_rename", args=[pk]), {"title": "Taken over"}),
        ("get", reverse("session_item", args=[pk]), {}),
        ("post", reverse("session_pin", args=[pk]), {"pinned": "1"}),
        ("post", reverse("session_delete", args=[pk]), {}),
        ("post", reverse("session_duplicate", args=[pk]), {}),
    ]


def test_only_the_owner_reaches_a_session(research: Research, owner: Any) -> None:
    target = session(owner, "Alice's own")
    before = Session.objects.values_list("pk", "title", "pinned", "deleted_at").get()
    for user in (research.member, research.admin, research.outsider):
        for method, url, data in session_urls(target):
            response = getattr(browser(user), method)(url, data, **HTMX)
            assert response.status_code == 404, (user, url)
    for method, url, data in session_urls(target):
        response = getattr(browser(None), method)(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/")
    assert Session.objects.values_list("pk", "title", "pinned", "deleted_at").get() == before
    assert (
        browser(research.outsider).post(reverse("session_undo", args=[target.pk])).status_code
        == 404
    )


def test_undo_is_the_owners_alone(research: Research, owner: Any) -> None:
    target = session(owner, "Deleted by Alice", deleted_at=timezone.now())
    for user in (research.member, research.outsider):
        response = browser(user).post(reverse("session_undo", args=[target.pk]), **HTMX)
        assert response.status_code == 404
    target.refresh_from_db()
    assert target.deleted_at is not None
    assert browser(None).post(reverse("session_undo", args=[target.pk])).status_code == 302


def test_lists_and_search_show_only_ones_own(research: Research, owner: Any) -> None:
    session(owner, "Alice's secret plan")
    for url in ("/sessions/", "/sessions/search/?q=secret", "/"):
        page = browser(research.outsider).get(url, **HTMX).content.decode()
        assert "secret plan" not in page
        assert browser(None).get(url).status_code == 302


# ------------------------------------------------------------------ rename


def test_rename_in_the_sidebar(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Untitled thing", minutes_ago=30)
    url = reverse("session_rename", args=[target.pk])

    form = owner_client.get(url, {"place": "item"}, **HTMX)
    assert 'value="Untitled thing"' in form.content.decode()

    saved = owner_client.post(url, {"title": "  Trip   to Lisbon ", "place": "item"}, **HTMX)

    assert saved.status_code == 200
    target.refresh_from_db()
    assert target.title == "Trip to Lisbon"
    assert "Trip to Lisbon</span>" in saved.content.decode()
    assert timezone.now() - target.updated_at > timedelta(minutes=29)  # keeps its place


def test_rename_from_the_page_title_updates_the_sidebar_too(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Before")
    saved = owner_client.post(
        reverse("session_rename", args=[target.pk]),
        {"title": "After", "place": "title"},
        **on_page(target),
    ).content.decode()
    assert '<h1 id="session-title"><span class="session-name">After</span>' in saved
    assert f'<li id="session-{target.pk}" class="session-item" hx-swap-oob="true">' in saved


@pytest.mark.parametrize(
    ("title", "sentence"),
    [
        ("   ", session_list.EMPTY_TITLE),
        ("x" * 201, "A title can be at most 200 characters; this one has 201."),
    ],
)
def test_a_bad_title_is_a_sentence_and_changes_nothing(
    owner: Any, owner_client: Any, title: str, sentence: str
) -> None:
    target = session(owner, "Keep me")
    response = owner_client.post(
        reverse("session_rename", args=[target.pk]), {"title": title, "place": "item"}, **HTMX
    )
    assert response.status_code == 200
    assert sentence in text(response)
    target.refresh_from_db()
    assert target.title == "Keep me"


def test_a_title_of_200_characters_is_taken(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Short")
    owner_client.post(reverse("session_rename", args=[target.pk]), {"title": "y" * 200}, **HTMX)
    target.refresh_from_db()
    assert target.title == "y" * 200


def test_a_title_is_escaped(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Plain")
    saved = owner_client.post(
        reverse("session_rename", args=[target.pk]),
        {"title": "<img src=x onerror=alert(1)>"},
        **HTMX,
    ).content.decode()
    assert "<img" not in saved
    assert "&lt;img src=x onerror=alert(1)&gt;" in saved


# ------------------------------------------------------------------ pin


def test_pin_and_unpin(owner: Any, owner_client: Any) -> None:
    newer, older = session(owner, "Newer", minutes_ago=1), session(owner, "Older", minutes_ago=9)
    pinned = owner_client.post(reverse("session_pin", args=[older.pk]), {"pinned": "1"}, **HTMX)
    assert sidebar_titles(pinned.content.decode()) == ["Older", "Newer"]
    assert "Unpin" in pinned.content.decode()
    older.refresh_from_db()
    assert older.pinned

    unpinned = owner_client.post(reverse("session_pin", args=[older.pk]), {"pinned": "0"}, **HTMX)
    assert sidebar_titles(unpinned.content.decode()) == ["Newer", "Older"]
    older.refresh_from_db()
    assert not older.pinned
    assert newer.pk  # untouched


# ------------------------------------------------------------------ delete and undo


def test_delete_hides_it_and_offers_undo(owner: Any, owner_client: Any, settings: Any) -> None:
    settings.PLAYGROUND_UNDO_SECONDS = 10
    target = session(owner, "Throwaway")
    response = owner_client.post(reverse("session_delete", args=[target.pk]), **HTMX)

    assert response.status_code == 200
    notice = text(response)
    assert "Deleted 'Throwaway'." in notice
    assert "Undo</button>" in notice
    assert 'data-expires="10"' in notice
    target.refresh_from_db()
    assert target.deleted_at is not None
    assert "Throwaway" not in owner_client.get("/").content.decode()
    assert owner_client.get(reverse("session", args=[target.pk])).status_code == 404


def test_deleting_the_session_one_looks_at_goes_to_a_new_comparison(
    owner: Any, owner_client: Any
) -> None:
    target = session(owner, "Looking at it")
    response = owner_client.post(reverse("session_delete", args=[target.pk]), **on_page(target))
    assert response["HX-Redirect"] == f"/?deleted={target.pk}"

    home = text(owner_client.get(response["HX-Redirect"]))
    assert "<h1>New comparison</h1>" in home
    assert "Deleted 'Looking at it'." in home
    assert '"reopen": "1"' in home


def test_deleting_stops_the_answers_still_coming(
    owner: Any, owner_client: Any, clean_redis: Any
) -> None:
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "Keep going")
    pending, streaming = turn.responses.order_by("pane__position")
    Response.objects.filter(pk=streaming.pk).update(status=Status.STREAMING)

    owner_client.post(reverse("session_delete", args=[turn.session_id]), **HTMX)

    pending.refresh_from_db()
    assert pending.status == Status.STOPPED
    assert clean_redis.get(response_log.stop_key(streaming.pk)) == b"1"  # its worker's to end


def test_undo_restores_it_exactly(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Bring me back", minutes_ago=90, pinned=True)
    make_turn(owner, [("echo", {})], "A question", session=target)
    Session.objects.filter(pk=target.pk).update(updated_at=timezone.now() - timedelta(minutes=90))
    before = Session.objects.values().get(pk=target.pk)
    owner_client.post(reverse("session_delete", args=[target.pk]), **HTMX)

    response = owner_client.post(reverse("session_undo", args=[target.pk]), **HTMX)

    assert response.status_code == 200
    assert "Restored 'Bring me back'." in text(response)
    assert sidebar_titles(response.content.decode()) == ["Bring me back"]
    assert Session.objects.values().get(pk=target.pk) == before
    assert Turn.objects.filter(session=target).count() == 1
    assert owner_client.get(reverse("session", args=[target.pk])).status_code == 200


def test_undo_from_a_new_comparison_reopens_the_session(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Reopen me", deleted_at=timezone.now())
    response = owner_client.post(reverse("session_undo", args=[target.pk]), {"reopen": "1"}, **HTMX)
    assert response["HX-Redirect"] == f"/s/{target.pk}/"


def test_undo_after_the_window_is_a_sentence(owner: Any, owner_client: Any, settings: Any) -> None:
    settings.PLAYGROUND_UNDO_SECONDS = 10
    target = session(owner, "Too late", deleted_at=timezone.now() - timedelta(seconds=11))
    response = owner_client.post(reverse("session_undo", args=[target.pk]), **HTMX)
    assert (
        "'Too late' can no longer be restored: a deletion can be undone for 10 seconds only."
        in text(response)
    )
    target.refresh_from_db()
    assert target.deleted_at is not None


def test_undo_of_a_purged_session_is_a_sentence_too(owner: Any, owner_client: Any) -> None:
    target = session(owner, "Purged", deleted_at=timezone.now() - timedelta(hours=1))
    owner_client.get("/")  # reading the list purges it
    response = owner_client.post(reverse("session_undo", args=[target.pk]), **HTMX)
    assert response.status_code == 404
    assert "That session can no longer be restored" in text(response)


# ------------------------------------------------------------------ purge


def test_reading_the_list_purges_overdue_deletions_only(
    owner: Any, outsider: Any, owner_client: Any, settings: Any
) -> None:
    settings.PLAYGROUND_UNDO_SECONDS = 10
    now = timezone.now()
    overdue = make_turn(owner, [("echo", {})], "Old").session
    Session.objects.filter(pk=overdue.pk).update(deleted_at=now - timedelta(seconds=30))
    fresh = session(owner, "Just deleted", deleted_at=now)
    others = session(outsider, "Someone else's", deleted_at=now - timedelta(seconds=30))

    owner_client.get("/")

    assert not Session.objects.filter(pk=overdue.pk).exists()
    assert not Turn.objects.filter(session_id=overdue.pk).exists()
    assert not Response.objects.filter(turn__session_id=overdue.pk).exists()
    assert Session.objects.filter(pk=fresh.pk).exists()  # still within its window
    assert Session.objects.filter(pk=others.pk).exists()  # another person's list, not read


def test_the_purge_task_removes_its_session_once_overdue(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_UNDO_SECONDS = 10
    target = session(owner, "Scheduled", deleted_at=timezone.now())
    purge_deleted_session(target.pk)  # early: an undo is still possible
    assert Session.objects.filter(pk=target.pk).exists()

    Session.objects.filter(pk=target.pk).update(deleted_at=timezone.now() - timedelta(seconds=11))
    purge_deleted_session(target.pk)
    assert not Session.objects.filter(pk=target.pk).exists()


def test_the_purge_task_leaves_an_undone_session(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_UNDO_SECONDS = 10
    target = session(owner, "Undone")
    purge_deleted_session(target.pk)
    assert Session.objects.filter(pk=target.pk).exists()


def test_delete_schedules_the_purge(owner: Any, owner_client: Any, monkeypatch: Any) -> None:
    scheduled: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        purge_deleted_session,
        "apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )
    target = session(owner, "Scheduled")
    owner_client.post(reverse("session_delete", args=[target.pk]), **HTMX)
    assert scheduled == [((target.pk,), 11.0)]


# ------------------------------------------------------------------ duplicate


def test_duplicate_opens_a_copy(owner: Any, owner_client: Any) -> None:
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "What is a fork?")
    Response.objects.filter(turn=turn).update(status=Status.DONE, text="An answer")
    source = turn.session
    Session.objects.filter(pk=source.pk).update(title="Forks")

    response = owner_client.post(reverse("session_duplicate", args=[source.pk]), **HTMX)

    copy = Session.objects.exclude(pk=source.pk).get()
    assert response["HX-Redirect"] == f"/s/{copy.pk}/"
    assert copy.title == "Forks (copy)"
    assert copy.owner == owner
    assert list(copy.turns.values_list("prompt", flat=True)) == ["What is a fork?"]
    assert list(Response.objects.filter(turn__session=copy).values_list("text", flat=True)) == [
        "An answer",
        "An answer",
    ]
    page = owner_client.get(response["HX-Redirect"]).content.decode()
    assert "Forks (copy)" in page


def test_a_long_title_still_fits_with_its_copy_mark(owner: Any, owner_client: Any) -> None:
    source = session(owner, "z" * 200)
    owner_client.post(reverse("session_duplicate", args=[source.pk]), **HTMX)
    copy = Session.objects.exclude(pk=source.pk).get()
    assert copy.title == "z" * 193 + " (copy)"
