"""Teams in the site: the list of one's teams and a form to start one; a team's page, where
owners and admins manage the members (only an owner makes or removes owners and admins, the
last owner stays); leaving; the team one works in, picked in the sidebar. Outsiders are told
a team is missing (404), anonymous people are sent to sign in, and nothing changes."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.urls import reverse

from playground.models import ActiveTeam, Membership, Role, Team
from playground.team_members import (
    LAST_OWNER_LEAVES,
    ONLY_OWNERS_CHANGE,
    ONLY_OWNERS_MAKE,
    ONLY_OWNERS_REMOVE,
)
from playground.teams import active_team
from tests.playground.helpers import make_endpoint
from tests.playground.team_personas import Research, browser, research_team, rows

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


def page(user: Any, url: str) -> str:
    response = browser(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def said(response: Any) -> str:
    """The page's text with entities decoded (sentences hold typographic quotes)."""
    return html.unescape(response.content.decode())


# ------------------------------------------------------------------ who reaches what


def team_urls(research: Research) -> list[tuple[str, str, dict[str, str]]]:
    """Every URL of a team, with what a request to it posts."""
    team = research.team.pk
    bob = research.membership(research.member).pk
    endpoint = make_endpoint(research.member, name="Bob's box")
    endpoint.team = research.team
    endpoint.save()
    return [
        ("get", reverse("team", args=[team]), {}),
        ("post", reverse("team_add_member", args=[team]), {"who": "mallory"}),
        ("post", reverse("team_member_role", args=[team, bob]), {"role": "admin"}),
        ("post", reverse("team_member_remove", args=[team, bob]), {}),
        ("post", reverse("team_leave", args=[team]), {}),
        ("post", reverse("team_endpoint_unshare", args=[team, endpoint.pk]), {}),
        ("post", reverse("active_team"), {"team": str(team)}),
    ]


def test_an_outsider_is_told_every_team_url_is_missing_and_nothing_changes(
    research: Research,
) -> None:
    before = rows()
    mallory = browser(research.outsider)
    for method, url, data in team_urls(research):
        assert getattr(mallory, method)(url, data).status_code == 404, url
    assert rows() == before
    assert not ActiveTeam.objects.exists()
    assert research.team.endpoints.count() == 1  # still shared


def test_anonymous_people_are_sent_to_sign_in_and_nothing_changes(research: Research) -> None:
    before = rows()
    anonymous = browser(None)
    for method, url, data in [*team_urls(research), ("get", reverse("teams"), {})]:
        response = getattr(anonymous, method)(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    assert anonymous.post(reverse("teams"), {"name": "Sneaky"}).status_code == 302
    assert rows() == before
    assert not Team.objects.filter(name="Sneaky").exists()
    assert research.team.endpoints.count() == 1


def test_a_member_sees_the_team_but_its_management_is_missing_for_them(
    research: Research,
) -> None:
    bob = browser(research.member)
    body = bob.get(reverse("team", args=[research.team.pk])).content.decode()
    assert "<h1>Research</h1>" in body
    assert "Your role: Member." in body
    for name in ("alice", "carol", "bob"):
        assert f"<td>{name}" in body
    assert "Add a member" not in body
    assert "Change role" not in body
    assert ">Remove</button>" not in body
    assert f"/teams/{research.team.pk}/keys/" not in body
    assert f"/teams/{research.team.pk}/usage/" not in body

    before = rows()
    carol = research.membership(research.admin).pk
    for url, data in [
        (reverse("team_add_member", args=[research.team.pk]), {"who": "mallory"}),
        (reverse("team_member_role", args=[research.team.pk, carol]), {"role": "member"}),
        (reverse("team_member_remove", args=[research.team.pk, carol]), {}),
    ]:
        assert bob.post(url, data).status_code == 404, url
    assert rows() == before


@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_managers_see_the_forms_and_links_to_keys_and_usage(
    research: Research, persona: str
) -> None:
    body = page(getattr(research, persona), reverse("team", args=[research.team.pk]))
    assert "Add a member" in body
    assert f'<a href="/teams/{research.team.pk}/keys/">Team keys</a>' in body
    assert f'<a href="/teams/{research.team.pk}/usage/">Team usage</a>' in body
    bob = research.membership(research.member).pk
    assert reverse("team_member_remove", args=[research.team.pk, bob]) in body
    # Roles are an owner's to change; an admin removes members only.
    assert ("Change role" in body) is (persona == "owner")
    carol = research.membership(research.admin).pk
    carol_removal = reverse("team_member_remove", args=[research.team.pk, carol])
    assert (carol_removal in body) is (persona == "owner")


def test_the_teams_page_lists_ones_teams_with_role_and_members(research: Research) -> None:
    Team.objects.create(name="Elsewhere")
    body = page(research.member, reverse("teams"))
    assert (
        f'<td><a href="{reverse("team", args=[research.team.pk])}">Research</a></td>\n'
        "        <td>Member</td>\n"
        "        <td>3</td>"
    ) in body
    assert "Elsewhere" not in body

    lonely = page(research.outsider, reverse("teams"))
    assert "You are in no team yet." in lonely
    assert "Research" not in lonely


# ------------------------------------------------------------------ starting a team


def test_whoever_starts_a_team_is_its_owner(owner: Any) -> None:
    alice = browser(owner)
    response = alice.post(reverse("teams"), {"name": "  Lab   notes "})
    team = Team.objects.get()
    assert team.name == "Lab notes"
    assert response.status_code == 302
    assert response["Location"] == reverse("team", args=[team.pk])
    assert rows() == [(team.pk, owner.pk, "owner")]
    shown = alice.get(response["Location"]).content.decode()
    assert "Created Lab notes; you are its owner." in shown


def test_htmx_is_sent_to_the_new_teams_page(owner: Any) -> None:
    response = browser(owner).post(reverse("teams"), {"name": "Lab"}, **HTMX)
    assert response["HX-Redirect"] == reverse("team", args=[Team.objects.get().pk])


@pytest.mark.parametrize(
    ("name", "sentence"),
    [
        ("", "Give the team a name."),
        ("   ", "Give the team a name."),
        ("x" * 81, "The name can be at most 80 characters long."),
        ("research", "A team named “research” already exists; pick another name."),
        ("Research", "A team named “Research” already exists; pick another name."),
    ],
)
def test_a_bad_team_name_gets_a_sentence_and_nothing_is_saved(
    research: Research, name: str, sentence: str
) -> None:
    before = (rows(), list(Team.objects.values_list("pk", "name")))
    response = browser(research.outsider).post(reverse("teams"), {"name": name}, **HTMX)
    assert response.status_code == 200
    assert f'<p class="error" role="alert">{sentence}</p>' in said(response)
    assert (rows(), list(Team.objects.values_list("pk", "name"))) == before


# ------------------------------------------------------------------ adding members


@pytest.mark.parametrize("who", ["mallory", "MALLORY@example.com"])
def test_a_manager_adds_a_person_by_username_or_email(research: Research, who: str) -> None:
    carol = browser(research.admin)
    response = carol.post(reverse("team_add_member", args=[research.team.pk]), {"who": who})
    assert response.status_code == 302
    assert research.membership(research.outsider).role == "member"
    assert "Added mallory as Member." in carol.get(response["Location"]).content.decode()
    # Now she is in: the team's page is hers to see.
    assert "<h1>Research</h1>" in page(research.outsider, reverse("team", args=[research.team.pk]))


def test_adding_someone_twice_says_so_and_keeps_one_membership(research: Research) -> None:
    url = reverse("team_add_member", args=[research.team.pk])
    alice = browser(research.owner)
    alice.post(url, {"who": "mallory"})
    before = rows()
    response = alice.post(url, {"who": "mallory", "role": "admin"}, **HTMX)
    assert '<p class="error" role="alert">mallory is already in this team.</p>' in said(response)
    assert rows() == before
    assert Membership.objects.filter(team=research.team, user=research.outsider).count() == 1


@pytest.mark.parametrize(
    ("who", "sentence"),
    [
        ("nobody", "Nobody here has the username or email “nobody”."),
        ("nobody@example.com", "Nobody here has the username or email “nobody@example.com”."),
        ("", "Give the username or email of the person to add."),
    ],
)
def test_adding_an_unknown_person_says_so_and_changes_nothing(
    research: Research, who: str, sentence: str
) -> None:
    before = rows()
    response = browser(research.owner).post(
        reverse("team_add_member", args=[research.team.pk]), {"who": who}, **HTMX
    )
    assert f'<p class="error" role="alert">{sentence}</p>' in said(response)
    assert f'value="{html.escape(who)}"' in response.content.decode()  # kept, to correct
    assert rows() == before


def test_only_an_owner_adds_an_admin(research: Research) -> None:
    url = reverse("team_add_member", args=[research.team.pk])
    refused = browser(research.admin).post(url, {"who": "mallory", "role": "admin"}, **HTMX)
    assert ONLY_OWNERS_MAKE in said(refused)
    assert not Membership.objects.filter(user=research.outsider).exists()

    browser(research.owner).post(url, {"who": "mallory", "role": "admin"})
    assert research.membership(research.outsider).role == "admin"


# ------------------------------------------------------------------ roles and removal


def role_url(research: Research, user: Any) -> str:
    return reverse("team_member_role", args=[research.team.pk, research.membership(user).pk])


def remove_url(research: Research, user: Any) -> str:
    return reverse("team_member_remove", args=[research.team.pk, research.membership(user).pk])


def test_an_owner_changes_roles(research: Research) -> None:
    alice = browser(research.owner)
    response = alice.post(role_url(research, research.member), {"role": "admin"}, **HTMX)
    assert "bob is now admin." in said(response)
    assert research.membership(research.member).role == "admin"
    alice.post(role_url(research, research.member), {"role": "owner"})
    assert research.membership(research.member).role == "owner"


@pytest.mark.parametrize(
    ("target", "role", "sentence"),
    [
        ("member", "admin", ONLY_OWNERS_MAKE),
        ("member", "owner", ONLY_OWNERS_MAKE),
        ("owner", "member", ONLY_OWNERS_CHANGE),
        ("admin", "member", ONLY_OWNERS_CHANGE),  # herself, too
    ],
)
def test_an_admin_cannot_make_or_change_owners_and_admins(
    research: Research, target: str, role: str, sentence: str
) -> None:
    before = rows()
    response = browser(research.admin).post(
        role_url(research, getattr(research, target)), {"role": role}, **HTMX
    )
    assert f'<p class="error" role="alert">{sentence}</p>' in said(response)
    assert rows() == before


def test_the_last_owner_cannot_be_demoted_until_there_is_another(research: Research) -> None:
    alice = browser(research.owner)
    before = rows()
    refused = alice.post(role_url(research, research.owner), {"role": "admin"}, **HTMX)
    assert "alice is this team's last owner: make someone else an owner first." in said(refused)
    assert rows() == before

    alice.post(role_url(research, research.admin), {"role": "owner"})
    alice.post(role_url(research, research.owner), {"role": "member"})
    assert research.membership(research.owner).role == "member"
    # Alice no longer manages the team; Carol, its owner now, cannot demote herself.
    assert browser(research.owner).post(remove_url(research, research.member)).status_code == 404
    carol = browser(research.admin)
    refused = carol.post(role_url(research, research.admin), {"role": "member"}, **HTMX)
    assert "carol is this team's last owner" in said(refused)


def test_a_role_that_does_not_exist_gets_a_sentence(research: Research) -> None:
    before = rows()
    response = browser(research.owner).post(
        role_url(research, research.member), {"role": "emperor"}, **HTMX
    )
    assert "Pick a role: owner, admin or member." in said(response)
    assert rows() == before


def test_an_admin_removes_a_member_but_not_an_admin_or_owner(research: Research) -> None:
    dave = Membership.objects.create(
        team=research.team, user=research.outsider, role=Role.ADMIN
    ).user
    carol = browser(research.admin)
    for target in (research.owner, dave):
        before = rows()
        response = carol.post(remove_url(research, target), **HTMX)
        assert f'<p class="error" role="alert">{ONLY_OWNERS_REMOVE}</p>' in said(response)
        assert rows() == before
    response = carol.post(remove_url(research, research.member), **HTMX)
    assert "Removed bob from Research." in said(response)
    assert not Membership.objects.filter(user=research.member).exists()
    assert browser(research.member).get(reverse("team", args=[research.team.pk])).status_code == 404


def test_an_owner_removes_an_admin_and_a_member_of_another_team_is_missing(
    research: Research, django_user_model: Any
) -> None:
    other = Team.objects.create(name="Other")
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x")
    theirs = Membership.objects.create(team=other, user=dave)
    alice = browser(research.owner)
    alice.post(remove_url(research, research.admin))
    assert not Membership.objects.filter(user=research.admin).exists()

    response = alice.post(reverse("team_member_remove", args=[research.team.pk, theirs.pk]), **HTMX)
    assert "That person is no longer in this team." in said(response)
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_the_last_owner_cannot_remove_herself(research: Research) -> None:
    before = rows()
    response = browser(research.owner).post(remove_url(research, research.owner), **HTMX)
    assert LAST_OWNER_LEAVES in said(response)
    assert rows() == before


# ------------------------------------------------------------------ leaving


@pytest.mark.parametrize("persona", ["member", "admin"])
def test_anyone_may_leave(research: Research, persona: str) -> None:
    user = getattr(research, persona)
    leaver = browser(user)
    response = leaver.post(reverse("team_leave", args=[research.team.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("teams")
    assert not Membership.objects.filter(team=research.team, user=user).exists()
    assert "You left Research." in leaver.get(reverse("teams")).content.decode()
    assert leaver.get(reverse("team", args=[research.team.pk])).status_code == 404


def test_the_last_owner_cannot_leave_until_there_is_another(research: Research) -> None:
    alice = browser(research.owner)
    url = reverse("team_leave", args=[research.team.pk])
    before = rows()
    response = alice.post(url, **HTMX)
    assert f'<p class="error" role="alert">{LAST_OWNER_LEAVES}</p>' in said(response)
    assert rows() == before

    alice.post(role_url(research, research.member), {"role": "owner"})
    assert alice.post(url, **HTMX)["HX-Redirect"] == reverse("teams")
    assert not Membership.objects.filter(user=research.owner).exists()


def test_leaving_ends_working_in_the_team_and_sharing_ones_endpoints_with_it(
    research: Research,
) -> None:
    mine = make_endpoint(research.member, name="Bob's box")
    mine.team = research.team
    mine.save()
    ActiveTeam.objects.create(user=research.member, team=research.team)

    browser(research.member).post(reverse("team_leave", args=[research.team.pk]))

    mine.refresh_from_db()
    assert mine.team is None
    assert not ActiveTeam.objects.filter(user=research.member).exists()


# ------------------------------------------------------------------ the active team


def test_the_sidebar_says_whose_work_it_is(research: Research) -> None:
    bob = browser(research.member)
    body = bob.get(reverse("home")).content.decode()
    assert "Working in: <strong>Only me</strong>" in body
    assert f'<option value="{research.team.pk}">Research</option>' in body

    response = bob.post(reverse("active_team"), {"team": str(research.team.pk), "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert active_team(research.member) == research.team
    body = bob.get(reverse("home")).content.decode()
    assert "Working in: <strong>Research</strong>" in body
    assert f'<option value="{research.team.pk}" selected>Research</option>' in body

    bob.post(reverse("active_team"), {"team": ""})
    assert active_team(research.member) is None
    assert "Working in: <strong>Only me</strong>" in bob.get(reverse("home")).content.decode()


def test_htmx_gets_the_picker_back(research: Research) -> None:
    response = browser(research.member).post(
        reverse("active_team"), {"team": str(research.team.pk), "next": "/s/1/"}, **HTMX
    )
    body = response.content.decode()
    assert body.startswith('<form class="team-picker" id="team-picker"')
    assert "Working in: <strong>Research</strong>" in body
    assert '<input type="hidden" name="next" value="/s/1/">' in body


def test_someone_in_no_team_works_alone_and_is_shown_the_way_to_teams(outsider: Any) -> None:
    body = page(outsider, reverse("home"))
    assert "Working in: <strong>Only me</strong>" in body
    assert 'name="team"' not in body
    assert f'<a href="{reverse("teams")}">Teams</a>' in body


def test_a_team_one_is_not_in_cannot_be_picked(research: Research) -> None:
    other = Team.objects.create(name="Other")
    response = browser(research.member).post(reverse("active_team"), {"team": str(other.pk)})
    assert response.status_code == 404
    assert not ActiveTeam.objects.exists()
    assert browser(research.member).post(reverse("active_team"), {"team": "x"}).status_code == 404


def test_a_redirect_after_picking_stays_on_this_site(research: Research) -> None:
    response = browser(research.member).post(
        reverse("active_team"), {"team": "", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("home")


def test_removal_ends_working_in_the_team(research: Research) -> None:
    ActiveTeam.objects.create(user=research.member, team=research.team)
    browser(research.owner).post(remove_url(research, research.member))
    assert not ActiveTeam.objects.exists()
    assert "Working in: <strong>Only me</strong>" in page(research.member, reverse("home"))
