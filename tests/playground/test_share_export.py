"""Exports through a share link (/shared/<token>/export.md|json): for whom the link opens,
as a viewer sees the session (never the owner's key names or email), and the same
not-available page as the link's page for every token that opens nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.models import Audience, Session, ShareLink
from tests.playground.share_helpers import KEY_LABEL, finished_comparison, link_to, shared_url
from tests.playground.team_personas import Research, browser, research_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


@pytest.fixture
def session(research: Research) -> Session:
    return finished_comparison(research.owner)


def exports(token: str) -> dict[str, str]:
    return {fmt: reverse(f"shared_export_{fmt}", args=[token]) for fmt in ("md", "json")}


@pytest.mark.parametrize(
    ("who", "opens"),
    [("owner", True), ("teammate", True), ("outsider", False), ("anonymous", False)],
)
def test_a_teams_link_exports_for_its_audience_only(
    research: Research, session: Session, who: str, opens: bool
) -> None:
    person = {
        "owner": research.owner,
        "teammate": research.member,
        "outsider": research.outsider,
        "anonymous": None,
    }[who]
    _link, token = link_to(session)
    client = browser(person)
    not_available = browser(research.outsider).get(shared_url("x" * 43)).content
    for url in exports(token).values():
        got = client.get(url)
        if opens:
            assert got.status_code == 200
            assert "attachment" in got["Content-Disposition"]
        else:  # the same page as any token that opens nothing
            assert got.status_code == 404
            assert (got.content == not_available) or who == "anonymous"
            assert b"Paris" not in got.content


def test_a_viewer_exports_what_the_page_shows_and_nothing_of_the_owners(
    research: Research, session: Session
) -> None:
    _link, token = link_to(session, Audience.ANYONE)
    urls = exports(token)
    markdown = browser(None).get(urls["md"]).content.decode()
    data = json.loads(browser(None).get(urls["json"]).content)
    assert "capital of France" in markdown
    assert data["schema"].startswith("playground.session-export/")
    text = markdown + json.dumps(data)
    assert KEY_LABEL not in text
    assert research.owner.email not in text
    assert "owner's key" in text or "personal key" in text
    # The owner's own download says whose key it was in their words.
    mine = browser(research.owner).get(reverse("export_md", args=[session.pk])).content
    assert KEY_LABEL in mine.decode()


def test_a_revoked_link_exports_nothing(research: Research, session: Session) -> None:
    link, token = link_to(session, Audience.ANYONE)
    ShareLink.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
    for url in exports(token).values():
        got = browser(None).get(url)
        assert got.status_code == 404 and b"capital" not in got.content
