"""The owner's Share panel: make a link (for teams, or for anyone where the site allows it;
an expiry), see its URL once, list the session's links and revoke one. Only the session's
owner reaches any of it: teammates, team admins and outsiders are told it is missing,
anonymous people are sent to sign in, and nothing changes."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.models import Audience, Session, ShareLink, SitePolicy
from tests.playground.share_helpers import expire, finished_comparison, link_to, shared_url
from tests.playground.team_personas import Research, browser, research_team

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


@pytest.fixture
def session(research: Research) -> Session:
    return finished_comparison(research.owner)


def said(response: Any) -> str:
    return html.unescape(response.content.decode())


def rows() -> list[tuple[Any, ...]]:
    return list(ShareLink.objects.order_by("pk").values_list("pk", "audience", "revoked_at"))


def new_url(page: str) -> str:
    match = re.search(r'<input id="share-url" value="([^"]+)" readonly>', page)
    assert match, page
    return match.group(1)


# ------------------------------------------------------------------ who reaches what


@pytest.mark.parametrize("who", ["teammate", "team admin", "outsider", "anonymous"])
def test_only_the_owner_reaches_the_panel_and_changes_nothing_else(
    research: Research, session: Session, who: str
) -> None:
    link, _token = link_to(session)
    user = {
        "teammate": research.member,
        "team admin": research.admin,
        "outsider": research.outsider,
        "anonymous": None,
    }[who]
    client = browser(user)
    before = rows()

    answers = [
        client.get(reverse("share", args=[session.pk]), **HTMX),
        client.post(
            reverse("share", args=[session.pk]), {"audience": "teams", "expiry": "never"}, **HTMX
        ),
        client.post(reverse("share_revoke", args=[link.pk]), **HTMX),
    ]

    for answer in answers:
        if user is None:
            assert answer.status_code == 302
            assert answer["Location"].startswith("/login/")
        else:
            assert answer.status_code == 404
    assert rows() == before


def test_the_owner_makes_a_link_and_sees_its_url_once(research: Research, session: Session) -> None:
    owner = browser(research.owner)

    made = owner.post(
        reverse("share", args=[session.pk]), {"audience": "teams", "expiry": "7"}, **HTMX
    )

    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    url = new_url(said(made))
    assert url.startswith("http://testserver/shared/")
    token = url.removeprefix("http://testserver/shared/").removesuffix("/")
    [link] = ShareLink.objects.all()
    assert (link.audience, link.created_by_id, link.session_id) == (
        Audience.TEAMS,
        research.owner.pk,
        session.pk,
    )
    assert link.expires_at is not None
    assert abs(link.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    assert browser(research.member).get(shared_url(token)).status_code == 200
    # Listed afterwards, but its URL is never shown again.
    listed = said(owner.get(reverse("share", args=[session.pk]), **HTMX))
    assert f'id="share-link-{link.pk}"' in listed
    assert "Signed-in members of my teams" in listed
    assert token not in listed
    assert "share-url" not in listed


def test_a_link_for_anyone_is_offered_only_while_the_site_allows_it(
    research: Research, session: Session
) -> None:
    owner = browser(research.owner)
    panel = said(owner.get(reverse("share", args=[session.pk]), **HTMX))
    assert 'value="anyone"' in panel
    made = owner.post(
        reverse("share", args=[session.pk]), {"audience": "anyone", "expiry": "never"}, **HTMX
    )
    token = new_url(said(made)).rsplit("/", 2)[-2]
    assert browser(None).get(shared_url(token)).status_code == 200

    SitePolicy.objects.filter(pk=SitePolicy.current().pk).update(allow_public_links=False)

    panel = said(owner.get(reverse("share", args=[session.pk]), **HTMX))
    assert 'value="anyone"' not in panel
    assert "Active, for your teams only: the site turned public links off" in panel
    before = rows()
    refused = owner.post(
        reverse("share", args=[session.pk]), {"audience": "anyone", "expiry": "never"}, **HTMX
    )
    assert refused.status_code == 200
    assert "This site allows links only for signed-in members of your teams" in said(refused)
    assert rows() == before


@pytest.mark.parametrize(
    ("form", "sentence"),
    [
        ({"audience": "teams", "expiry": "365"}, "Pick how long the link lasts."),
        ({"audience": "everyone", "expiry": "never"}, "Pick who may open the link."),
        ({}, "Pick who may open the link."),
    ],
)
def test_bad_input_gets_a_sentence_and_makes_nothing(
    research: Research, session: Session, form: dict[str, str], sentence: str
) -> None:
    answer = browser(research.owner).post(reverse("share", args=[session.pk]), form, **HTMX)

    assert answer.status_code == 200
    assert sentence in said(answer)
    assert "share-url" not in said(answer)
    assert not ShareLink.objects.exists()


def test_the_panel_lists_each_links_state_and_revoke_is_immediate(
    research: Research, session: Session
) -> None:
    active, token = link_to(session, expiry="30")
    expired, _ = link_to(session)
    expire(expired)
    owner = browser(research.owner)

    panel = said(owner.get(reverse("share", args=[session.pk]), **HTMX))
    assert re.search(rf'id="share-link-{active.pk}">.*?<td>Active</td>', panel, re.DOTALL)
    assert re.search(rf'id="share-link-{expired.pk}" class="unusable">.*?Expired', panel, re.DOTALL)
    assert "not yet" in panel  # never opened

    revoked = owner.post(reverse("share_revoke", args=[active.pk]), **HTMX)

    assert revoked.status_code == 200
    row = rf'id="share-link-{active.pk}" class="unusable">.*?Revoked'
    assert re.search(row, said(revoked), re.DOTALL)
    active.refresh_from_db()
    assert active.revoked_at is not None
    assert browser(research.member).get(shared_url(token)).status_code == 404
    # Revoking again changes nothing: the first time stays.
    first = active.revoked_at
    owner.post(reverse("share_revoke", args=[active.pk]), **HTMX)
    active.refresh_from_db()
    assert active.revoked_at == first


def test_without_htmx_the_panel_is_a_page_and_revoke_comes_back_to_it(
    research: Research, session: Session
) -> None:
    link, _token = link_to(session)
    owner = browser(research.owner)

    page = owner.get(reverse("share", args=[session.pk]))
    assert page.status_code == 200
    assert "<!doctype html>" in page.content.decode()
    assert "← Back to the session" in said(page)
    answer = owner.post(reverse("share_revoke", args=[link.pk]))
    assert answer.status_code == 302
    assert answer["Location"] == reverse("share", args=[session.pk])


def test_a_deleted_sessions_panel_and_links_are_missing(
    research: Research, session: Session
) -> None:
    link, _token = link_to(session)
    Session.objects.filter(pk=session.pk).update(deleted_at=timezone.now())
    owner = browser(research.owner)

    assert owner.get(reverse("share", args=[session.pk]), **HTMX).status_code == 404
    assert owner.post(reverse("share_revoke", args=[link.pk]), **HTMX).status_code == 404


def test_the_session_page_has_a_share_button(research: Research, session: Session) -> None:
    page = browser(research.owner).get(reverse("session", args=[session.pk])).content.decode()

    assert (
        f'<button type="button" hx-get="/s/{session.pk}/share/" hx-target="#share-panel"'
        ' hx-swap="outerHTML">Share</button>'
    ) in page
    assert '<div id="share-panel" hidden></div>' in page
