"""The page a share link opens (/shared/<token>/): the session read-only, with everything
its panes show but the owner's key names, email, other sessions and composer; who it opens
for (its audience, the site's policy); and the one "not available" page, byte for byte the
same whatever the reason a token opens nothing."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.utils import timezone

from playground.models import Audience, Membership, Session, ShareLink, SitePolicy, Team
from tests.playground.share_helpers import (
    KEY_LABEL,
    OTHER_TITLE,
    REASONING,
    expire,
    finished_comparison,
    link_to,
    shared_url,
    tampered,
)
from tests.playground.team_personas import Research, browser, research_team

pytestmark = pytest.mark.django_db

NOT_AVAILABLE = "This link is not available."


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    owner.first_name, owner.last_name = "Alice", "Liddell"
    owner.save()
    return research_team(django_user_model, owner, outsider)


@pytest.fixture
def session(research: Research) -> Session:
    return finished_comparison(research.owner)


def persona(research: Research, who: str) -> Any:
    return {
        "owner": research.owner,
        "teammate": research.member,
        "team admin": research.admin,
        "outsider": research.outsider,
        "anonymous": None,
    }[who]


def text_of(response: Any) -> str:
    return html.unescape(response.content.decode())


# ------------------------------------------------------------------ who it opens for


@pytest.mark.parametrize(
    ("who", "opens"),
    [
        ("owner", True),
        ("teammate", True),
        ("team admin", True),
        ("outsider", False),
        ("anonymous", False),
    ],
)
def test_a_link_for_teams_opens_for_the_owner_and_their_teammates_only(
    research: Research, session: Session, who: str, opens: bool
) -> None:
    _link, token = link_to(session)

    response = browser(persona(research, who)).get(shared_url(token))

    if opens:
        assert response.status_code == 200
        assert "<strong>Paris</strong> is the capital of France." in response.content.decode()
    else:
        assert response.status_code == 404
        assert NOT_AVAILABLE in response.content.decode()
        assert "Paris" not in response.content.decode()


@pytest.mark.parametrize("who", ["owner", "teammate", "team admin", "outsider", "anonymous"])
def test_a_link_for_anyone_opens_for_everyone(
    research: Research, session: Session, who: str
) -> None:
    _link, token = link_to(session, Audience.ANYONE)

    response = browser(persona(research, who)).get(shared_url(token))

    assert response.status_code == 200
    assert "<strong>Paris</strong>" in response.content.decode()


def test_someone_who_leaves_the_owners_team_no_longer_opens_it(
    research: Research, session: Session
) -> None:
    _link, token = link_to(session)
    viewer = browser(research.member)
    assert viewer.get(shared_url(token)).status_code == 200

    research.membership(research.member).delete()

    assert viewer.get(shared_url(token)).status_code == 404


def test_a_teammate_in_another_team_of_the_owner_opens_it(
    research: Research, session: Session
) -> None:
    other = Team.objects.create(name="Reading group")
    Membership.objects.create(team=other, user=research.owner)
    Membership.objects.create(team=other, user=research.outsider)
    _link, token = link_to(session)

    assert browser(research.outsider).get(shared_url(token)).status_code == 200


def test_public_links_stop_working_for_outsiders_when_the_site_turns_them_off(
    research: Research, session: Session
) -> None:
    _link, token = link_to(session, Audience.ANYONE)
    assert browser(None).get(shared_url(token)).status_code == 200

    SitePolicy.objects.filter(pk=SitePolicy.current().pk).update(allow_public_links=False)

    assert browser(None).get(shared_url(token)).status_code == 404
    assert browser(research.outsider).get(shared_url(token)).status_code == 404
    # As the policy says: links then open for signed-in members of the owner's teams.
    assert browser(research.member).get(shared_url(token)).status_code == 200

    SitePolicy.objects.filter(pk=SitePolicy.current().pk).update(allow_public_links=True)
    assert browser(None).get(shared_url(token)).status_code == 200


# ------------------------------------------------------------------ what it shows


def test_the_page_shows_every_pane_read_only_without_the_owners_private_things(
    research: Research, session: Session
) -> None:
    _link, token = link_to(session, Audience.ANYONE)

    response = browser(research.outsider).get(shared_url(token))
    page = text_of(response)

    assert response.status_code == 200
    assert "Shared by Alice Liddell" in page
    assert 'aria-label="Echo"' in page
    # The pane's parameters, named as the pane's fields name them.
    assert re.search(r"<dt>Temperature</dt><dd>0\.2</dd>", page)
    assert re.search(r"<dt>Repeat</dt><dd>2</dd>", page)
    # The prompt, the answer (as Markdown), the reasoning, the tool call.
    assert "What is the capital of France?" in page
    assert "<strong>Paris</strong> is the capital of France." in page
    assert REASONING in page
    assert "Tool call: get_weather" in page
    assert '"city": "Paris"' in page
    # Metrics, usage and cost, and whose key it was, never its name.
    assert "Done · 12 tokens · TTFT 0.12 s · 14.2 tok/s · 0.90 s · $0.0123 · owner's key" in page
    assert KEY_LABEL not in page
    assert "your key" not in page
    # Never the owner's email, other sessions, sidebar or composer.
    assert "alice@example.com" not in page
    assert OTHER_TITLE not in page
    assert "New comparison" not in page
    assert 'id="compose"' not in page
    assert 'name="prompt"' not in page
    assert ">Send<" not in page and ">Stop<" not in page
    assert "<select" not in page
    # It follows the session live through the link's own socket.
    assert f'ws-connect="/ws/shared/{token}/"' in page
    # The URL is the capability: not cached, not sent on as a Referer to other sites.
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"


def test_the_owners_name_is_their_username_without_a_full_name(
    research: Research, session: Session
) -> None:
    research.owner.first_name = research.owner.last_name = ""
    research.owner.save()
    _link, token = link_to(session)

    page = text_of(browser(research.member).get(shared_url(token)))

    assert "Shared by alice · read-only" in page


def test_a_signed_in_viewer_may_fork_and_an_anonymous_one_is_asked_to_sign_in(
    research: Research, session: Session
) -> None:
    _link, token = link_to(session, Audience.ANYONE)

    signed_in = text_of(browser(research.member).get(shared_url(token)))
    anonymous = text_of(browser(None).get(shared_url(token)))

    assert "Fork into my sessions" in signed_in
    assert "Sign in to fork" not in signed_in
    assert "Fork into my sessions" not in anonymous
    assert f'href="/login/?next=/shared/{token}/">Sign in to fork</a>' in anonymous


def test_opening_is_recorded_for_the_owner_to_see_but_not_the_owners_own(
    research: Research, session: Session
) -> None:
    link, token = link_to(session)

    browser(research.owner).get(shared_url(token))
    link.refresh_from_db()
    assert link.last_opened_at is None

    before = timezone.now()
    browser(research.member).get(shared_url(token))
    link.refresh_from_db()
    assert link.last_opened_at is not None and link.last_opened_at >= before


# ------------------------------------------------------------------ when it opens nothing


def test_revoked_expired_tampered_deleted_and_not_allowed_all_get_the_same_bytes(
    research: Research, session: Session, django_user_model: Any
) -> None:
    revoked, revoked_token = link_to(session)
    ShareLink.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, expired_token = link_to(session)
    expire(expired)
    _good, good_token = link_to(session)
    deleted_session = finished_comparison(research.owner)
    _gone, deleted_token = link_to(deleted_session)
    Session.objects.filter(pk=deleted_session.pk).update(deleted_at=timezone.now())
    _public, public_token = link_to(session, Audience.ANYONE)
    SitePolicy.objects.filter(pk=SitePolicy.current().pk).update(allow_public_links=False)

    tokens = {
        "never made": "x" * 43,
        "too short": "abc",
        "revoked": revoked_token,
        "expired": expired_token,
        "tampered": tampered(good_token),
        "session deleted": deleted_token,
        "not in the owner's team": good_token,
        "public links turned off": public_token,
    }
    for who in (research.outsider, None):
        answers = {reason: browser(who).get(shared_url(token)) for reason, token in tokens.items()}
        bodies = {reason: a.content for reason, a in answers.items()}
        assert {a.status_code for a in answers.values()} == {404}
        assert len(set(bodies.values())) == 1, bodies
        assert {a["Content-Type"] for a in answers.values()} == {"text/html; charset=utf-8"}
        body = next(iter(bodies.values())).decode()
        assert NOT_AVAILABLE in body
        assert "csrf" not in body.lower()

    # The same good token still opens for a teammate: only the viewer made the difference.
    assert browser(research.member).get(shared_url(good_token)).status_code == 200


def test_a_revoked_link_stops_at_once(research: Research, session: Session) -> None:
    link, token = link_to(session)
    viewer = browser(research.member)
    assert viewer.get(shared_url(token)).status_code == 200

    browser(research.owner).post(f"/share-links/{link.pk}/revoke/")

    assert viewer.get(shared_url(token)).status_code == 404


def test_a_link_expires(research: Research, session: Session) -> None:
    link, token = link_to(session, expiry="1")
    assert link.expires_at is not None
    viewer = browser(research.member)
    assert viewer.get(shared_url(token)).status_code == 200

    expire(link)

    assert viewer.get(shared_url(token)).status_code == 404


def test_a_deleted_session_is_not_available_and_its_links_go_with_it(
    research: Research, session: Session
) -> None:
    link, token = link_to(session)
    viewer = browser(research.member)

    Session.objects.filter(pk=session.pk).update(deleted_at=timezone.now())
    assert viewer.get(shared_url(token)).status_code == 404

    Session.objects.filter(pk=session.pk).delete()
    assert not ShareLink.objects.filter(pk=link.pk).exists()
    assert viewer.get(shared_url(token)).status_code == 404


def test_links_go_when_their_owner_is_deleted(research: Research, session: Session) -> None:
    """LibreChat #10381: share links outlived their owner; here they go with them."""
    link, token = link_to(session, Audience.ANYONE)

    research.owner.delete()

    assert not ShareLink.objects.filter(pk=link.pk).exists()
    assert browser(None).get(shared_url(token)).status_code == 404


def test_only_the_tokens_hash_is_stored(session: Session) -> None:
    import hashlib

    link, token = link_to(session)

    assert len(token) >= 43  # 32 random bytes
    link.refresh_from_db()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(v) for v in ShareLink.objects.filter(pk=link.pk).values().get().values())
    assert token not in stored


def test_other_methods_are_refused(research: Research, session: Session) -> None:
    _link, token = link_to(session)
    response = browser(research.member).post(shared_url(token))
    assert response.status_code == 405
