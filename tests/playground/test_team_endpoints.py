"""An endpoint shared with a team: its owner shares it from Your endpoints; the team's
members then pick its models and Send with them (the turn says "team endpoint '<name>'");
outsiders never see it; unsharing, leaving or being removed ends it at once. The key is
never on any page."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.forms import NOT_YOUR_TEAM
from playground.models import CustomEndpoint, Response, Session, Team
from tests.playground.helpers import endpoint_key, make_endpoint, send_form
from tests.playground.team_personas import Research, browser, research_team

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
KEY = "sk-team-Zq8vXw3NmT5pL0a1b2"
MODEL = "llama-3.1-8b"


@pytest.fixture(autouse=True)
def _private_test_hosts(settings: Any) -> None:
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["vllm.internal"]


@pytest.fixture(autouse=True)
def _empty_celery_queue(clean_redis: Any) -> None:
    clean_redis.delete("celery")


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


@pytest.fixture
def lab(research: Research) -> CustomEndpoint:
    """Bob's (a plain member's) endpoint, not shared yet."""
    return make_endpoint(research.member, name="Lab", key=KEY, model_ids=[MODEL, "other"])


def option(endpoint: CustomEndpoint) -> str:
    return f'<option value="{html.escape(endpoint_key(endpoint))}">Lab · {MODEL}</option>'


def share(owner: Client, endpoint: CustomEndpoint, team: Team | None, **extra: Any) -> Any:
    """The owner saves the endpoint's form unchanged but for the team (the key stays)."""
    form = {
        "name": endpoint.name,
        "base_url": endpoint.base_url,
        "model_ids": "\n".join(endpoint.model_ids),
        "team": str(team.pk) if team else "",
    }
    return owner.post(reverse("endpoint_edit", args=[endpoint.pk]), form, **extra)


def unknown(endpoint: CustomEndpoint) -> str:
    return (
        f"<li>Pane 1: {html.escape(repr(MODEL))} is not a model of any of your endpoints; "
        "pick another model.</li>"
    )


def picker(user: Any) -> str:
    return browser(user).get(reverse("home")).content.decode()


def test_sharing_puts_its_models_in_teammates_pickers_only(
    research: Research, lab: CustomEndpoint
) -> None:
    assert option(lab) not in picker(research.owner)

    sealed = lab.key_ciphertext
    response = share(browser(research.member), lab, research.team)

    assert response.status_code == 302
    lab.refresh_from_db()
    assert lab.team_id == research.team.pk
    assert lab.key_ciphertext == sealed  # the key stayed
    for teammate in (research.owner, research.admin, research.member):
        assert option(lab) in picker(teammate)
    assert endpoint_key(lab) not in picker(research.outsider)


def test_the_endpoints_page_offers_ones_teams_and_says_who_it_is_shared_with(
    research: Research, lab: CustomEndpoint
) -> None:
    Team.objects.create(name="Not bob's")
    bob = browser(research.member)
    form = bob.get(reverse("endpoint_edit", args=[lab.pk])).content.decode()
    assert (
        '<select id="endpoint-team" name="team"><option value="" selected>Not shared</option>'
        f'<option value="{research.team.pk}">Research</option></select>'
    ) in form
    share(bob, lab, research.team)
    body = bob.get(reverse("endpoints")).content.decode()
    assert f'<td><a href="{reverse("team", args=[research.team.pk])}">Research</a></td>' in body
    form = bob.get(reverse("endpoint_edit", args=[lab.pk])).content.decode()
    assert f'<option value="{research.team.pk}" selected>Research</option>' in form


def test_a_teammate_sends_with_it_and_the_pane_says_team_endpoint(
    research: Research, lab: CustomEndpoint, clean_redis: Any
) -> None:
    share(browser(research.member), lab, research.team)
    key = endpoint_key(lab)

    response = browser(research.admin).post(
        reverse("send_new"), send_form(panes=[(key, {})]), **HTMX
    )

    assert response.status_code == 200, response.content.decode()
    assert "HX-Redirect" in response
    saved = Response.objects.get()
    assert saved.turn.session.owner_id == research.admin.pk
    assert (saved.model_key, saved.display_name) == (key, f"Lab · {MODEL}")
    assert (saved.key_scope, saved.key_label) == ("team", "team endpoint 'Lab'")
    [message] = clean_redis.lrange("celery", 0, -1)
    assert KEY.encode() not in message


def test_the_owners_own_send_says_your_endpoint(research: Research, lab: CustomEndpoint) -> None:
    share(browser(research.member), lab, research.team)
    browser(research.member).post(
        reverse("send_new"), send_form(panes=[(endpoint_key(lab), {})]), **HTMX
    )
    saved = Response.objects.get()
    assert (saved.key_scope, saved.key_label) == ("user", "your endpoint 'Lab'")


def test_an_outsider_sending_with_its_model_is_refused(
    research: Research, lab: CustomEndpoint, clean_redis: Any
) -> None:
    share(browser(research.member), lab, research.team)

    response = browser(research.outsider).post(
        reverse("send_new"), send_form(panes=[(endpoint_key(lab), {})]), **HTMX
    )

    assert unknown(lab) in response.content.decode()
    assert (Session.objects.count(), Response.objects.count()) == (0, 0)
    assert clean_redis.lrange("celery", 0, -1) == []


def test_only_a_team_of_ones_own_can_be_picked(research: Research, lab: CustomEndpoint) -> None:
    elsewhere = Team.objects.create(name="Elsewhere")
    response = share(browser(research.member), lab, elsewhere, **HTMX)
    body = html.unescape(response.content.decode())
    assert f'<p class="error" role="alert">{NOT_YOUR_TEAM}</p>' in body
    lab.refresh_from_db()
    assert lab.team_id is None


def test_only_its_owner_shares_an_endpoint(research: Research, lab: CustomEndpoint) -> None:
    """A manager of the team cannot share a member's endpoint for them: it is not theirs."""
    assert share(browser(research.owner), lab, research.team).status_code == 404
    lab.refresh_from_db()
    assert lab.team_id is None


def test_the_team_page_lists_it_without_its_key(research: Research, lab: CustomEndpoint) -> None:
    share(browser(research.member), lab, research.team)
    for persona in (research.owner, research.admin, research.member):
        body = browser(persona).get(reverse("team", args=[research.team.pk])).content.decode()
        assert (
            f'<tr id="shared-endpoint-{lab.pk}">\n'
            "        <td>Lab</td>\n"
            "        <td>bob</td>\n"
            f"        <td>{MODEL}, other</td>\n"
            "        <td>has key</td>"
        ) in body
        for secret in (KEY, KEY[-4:], lab.key_hint, lab.key_ciphertext, lab.base_url):
            assert secret not in body


@pytest.mark.parametrize("persona", ["owner", "admin", "member"])
def test_managers_and_its_owner_stop_sharing_it_and_it_leaves_the_pickers(
    research: Research, lab: CustomEndpoint, persona: str
) -> None:
    share(browser(research.member), lab, research.team)
    url = reverse("team_endpoint_unshare", args=[research.team.pk, lab.pk])

    response = browser(getattr(research, persona)).post(url, **HTMX)

    assert "Lab is no longer shared with Research." in response.content.decode()
    lab.refresh_from_db()
    assert lab.team_id is None
    assert lab.owner_id == research.member.pk  # still bob's, and still in his picker
    assert option(lab) not in picker(research.admin)
    assert option(lab) in picker(research.member)
    refused = browser(research.admin).post(
        reverse("send_new"), send_form(panes=[(endpoint_key(lab), {})]), **HTMX
    )
    assert unknown(lab) in refused.content.decode()


def test_a_member_who_does_not_own_it_cannot_stop_sharing_it(
    research: Research, django_user_model: Any
) -> None:
    alices = make_endpoint(research.owner, name="Lab", key=KEY, model_ids=[MODEL])
    share(browser(research.owner), alices, research.team)
    url = reverse("team_endpoint_unshare", args=[research.team.pk, alices.pk])
    assert browser(research.member).post(url).status_code == 404
    assert browser(research.outsider).post(url).status_code == 404
    alices.refresh_from_db()
    assert alices.team_id == research.team.pk


def test_a_member_who_leaves_or_is_removed_stops_seeing_it_at_once(
    research: Research, django_user_model: Any
) -> None:
    alices = make_endpoint(research.owner, name="Lab", key=KEY, model_ids=[MODEL])
    share(browser(research.owner), alices, research.team)
    assert option(alices) in picker(research.member)
    assert option(alices) in picker(research.admin)

    browser(research.member).post(reverse("team_leave", args=[research.team.pk]))
    carol = research.membership(research.admin).pk
    browser(research.owner).post(reverse("team_member_remove", args=[research.team.pk, carol]))

    for gone in (research.member, research.admin):
        assert endpoint_key(alices) not in picker(gone)
        refused = browser(gone).post(
            reverse("send_new"), send_form(panes=[(endpoint_key(alices), {})]), **HTMX
        )
        assert unknown(alices) in refused.content.decode()
    assert Response.objects.count() == 0


def test_its_owner_leaving_stops_sharing_it(research: Research, lab: CustomEndpoint) -> None:
    share(browser(research.member), lab, research.team)
    browser(research.member).post(reverse("team_leave", args=[research.team.pk]))
    lab.refresh_from_db()
    assert lab.team_id is None
    assert option(lab) not in picker(research.owner)
