"""Fork into my sessions: a signed-in viewer of a share link gets a copy of the session of
their own, and what they send there is answered with their keys and counted on their quota;
an anonymous viewer is sent to sign in, and a viewer the link does not open for gets the
not-available page. Nothing is copied for them."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground import tasks
from playground.catalog import catalog
from playground.credentials import model_base_url, seal_parts
from playground.models import Audience, Credential, Pane, Quota, QuotaCounter, Response, Session
from tests.playground.helpers import make_turn, responses_of, send_form
from tests.playground.share_helpers import (
    ANSWER,
    finished_comparison,
    link_to,
    shared_url,
)
from tests.playground.team_personas import Research, browser, research_team

pytestmark = pytest.mark.django_db

GPT = "openai:gpt-4.1-mini"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


@pytest.fixture(autouse=True)
def _no_site_keys_nor_fair_use(settings: Any) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {}
    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 0
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 0


def own_key(user: Any, label: str, secret: str) -> Credential:
    row = Credential(
        scope="user",
        user=user,
        provider="openai",
        label=label,
        base_url=model_base_url(catalog()[GPT]),
    )
    seal_parts(row, {"api_key": secret})
    row.save()
    return row


def test_a_teammate_forks_and_lands_in_a_copy_of_their_own(research: Research) -> None:
    source = finished_comparison(research.owner)
    _link, token = link_to(source)
    teammate = browser(research.member)

    answer = teammate.post(reverse("shared_fork", args=[token]))

    [copy] = Session.objects.filter(owner=research.member)
    assert answer.status_code == 302
    assert answer["Location"] == reverse("session", args=[copy.pk])
    assert copy.forked_from_id == source.pk
    [response] = Response.objects.filter(turn__session=copy)
    assert (response.text, response.status, response.output_tokens) == (ANSWER, "done", 12)
    assert response.key_label == ""  # the owner's key's name does not go along
    page = teammate.get(answer["Location"]).content.decode()
    assert "<strong>Paris</strong> is the capital of France." in page
    # The owner's session is as it was.
    assert Session.objects.filter(owner=research.owner, deleted_at__isnull=True).count() == 2


def test_what_the_viewer_sends_in_the_copy_uses_their_keys_and_quota(
    research: Research, monkeypatch: pytest.MonkeyPatch
) -> None:
    alices = own_key(research.owner, "alice-work", "sk-alice-00000000000000000000000001")
    bobs = own_key(research.member, "bob-own", "sk-bob-0000000000000000000000000002")
    turn = make_turn(research.owner, [(GPT, {}), ("echo", {})], "Compare")
    Pane.objects.filter(session=turn.session, position=0).update(credential=alices)
    Response.objects.filter(turn=turn, pane__position=0).update(
        status="done", credential=alices, key_scope="user", key_label="your key 'alice-work'"
    )
    Response.objects.filter(turn=turn, pane__position=1).update(status="done")
    Quota.objects.create(scope="site", requests_per_day=100)
    _link, token = link_to(turn.session, Audience.ANYONE)
    bob = browser(research.member)
    copy_url = bob.post(reverse("shared_fork", args=[token]))["Location"]
    copy = Session.objects.get(owner=research.member)
    assert list(copy.panes.values_list("credential", flat=True)) == [None, None]
    monkeypatch.setattr(tasks.run_turn, "delay", lambda turn_id, ids: None)

    sent = bob.post(
        reverse("send", args=[copy.pk]), send_form("Next", [(GPT, {}), ("echo", {})]), **HTMX
    )

    assert sent.status_code == 200, sent.content
    assert copy_url == reverse("session", args=[copy.pk])
    new_turn = copy.turns.get(index=1)
    gpt, echo = responses_of(new_turn)
    assert (gpt.credential_id, gpt.key_label) == (bobs.pk, "your key 'bob-own'")
    assert echo.quota_counters
    counted = QuotaCounter.objects.filter(pk__in=echo.quota_counters)
    assert set(counted.values_list("owner", flat=True)) == {f"user:{research.member.pk}"}


def test_an_anonymous_viewer_is_sent_to_sign_in_first(research: Research) -> None:
    source = finished_comparison(research.owner)
    _link, token = link_to(source, Audience.ANYONE)
    before = Session.objects.count()

    answer = browser(None).post(reverse("shared_fork", args=[token]))

    assert answer.status_code == 302
    assert answer["Location"] == f"/login/?next=%2Fshared%2F{token}%2F"
    assert Session.objects.count() == before


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
def test_a_viewer_the_link_does_not_open_for_copies_nothing(research: Research, who: str) -> None:
    source = finished_comparison(research.owner)
    _link, token = link_to(source)
    before = Session.objects.count()

    answer = browser(research.outsider if who == "outsider" else None).post(
        reverse("shared_fork", args=[token])
    )

    assert answer.status_code == 404
    assert "This link is not available." in answer.content.decode()
    assert Session.objects.count() == before
    assert browser(research.member).get(shared_url(token)).status_code == 200
