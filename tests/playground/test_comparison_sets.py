"""Comparison sets: saved from the composer ("Save as set"), listed on /sets/ (one's own and
those shared with one's teams), started with one click (``/?set=<id>``), renamed, shared and
deleted, each through one access check; and ``/?models=a,b`` for a list of models. The
Research team's personas: alice (owner), carol (admin), bob and dave (members), mallory (in
no team)."""

from __future__ import annotations

import html
import re
import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from playground import team_members
from playground.comparison_sets import NOT_AVAILABLE, NOT_YOUR_TEAM
from playground.models import ComparisonSet, Membership, Role, Team
from tests.playground.helpers import endpoint_key, make_endpoint, send_form
from tests.playground.team_personas import PASSWORD, Research, browser, research_team

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
ECHO_PAIR = [
    {"model_key": "echo", "params": {"temperature": 0.2, "repeat": 3}},
    {"model_key": "echo", "params": {"temperature": 1.5}},
]


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


@pytest.fixture
def dave(django_user_model: Any, research: Research) -> Any:
    """A second plain member: neither the set's owner nor a manager of its team."""
    dave = django_user_model.objects.create_user("dave", "dave@example.com", PASSWORD)
    Membership.objects.create(team=research.team, user=dave, role=Role.MEMBER)
    return dave


@pytest.fixture
def team_set(research: Research) -> ComparisonSet:
    """Bob's set, shared with Research."""
    return ComparisonSet.objects.create(
        owner=research.member,
        team=research.team,
        name="Echo pair",
        panes=ECHO_PAIR,
        system_prompt="Answer in one line.",
        same_params=True,
    )


def save(user: Any, name: str, team: str = "", **form: Any) -> Any:
    data = send_form(
        panes=form.pop("panes", [("echo", {"temperature": "0.2", "repeat": "3"})]),
        system_prompt=form.pop("system_prompt", "Be brief."),
    )
    data.update(set_name=name, set_team=team, **form)
    return browser(user).post(reverse("set_save"), data, **HTMX)


def rows() -> list[tuple[int, int | None, str, list[Any], str, bool]]:
    return list(
        ComparisonSet.objects.order_by("pk").values_list(
            "owner_id", "team_id", "name", "panes", "system_prompt", "same_params"
        )
    )


def page(user: Any, url: str) -> str:
    response = browser(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def pane_html(body: str, position: int) -> str:
    match = re.search(
        rf'<section class="pane" id="pane-{position}".*?</section>', body, flags=re.DOTALL
    )
    return match.group(0) if match else ""


def field_value(body: str, position: int, param: str) -> str | None:
    match = re.search(rf'name="pane-{position}-p-{param}" value="([^"]*)"', body)
    return match.group(1) if match else None


def picked_model(body: str, position: int) -> str | None:
    match = re.search(r'<option value="([^"]*)" selected', pane_html(body, position))
    return html.unescape(match.group(1)) if match else None


def picked_models(body: str) -> list[str | None]:
    positions = re.findall(r'<section class="pane" id="pane-(\d+)"', body)
    return [picked_model(body, int(p)) for p in positions]


def notes(body: str) -> list[str]:
    found = re.findall(r'<p class="notice" role="status">(.*?)</p>', body)
    return [html.unescape(note) for note in found]


# --------------------------------------------------------------------------- Save as set


def test_save_as_set_keeps_the_panes_cleaned_parameters_and_system_prompt(owner: Any) -> None:
    response = save(
        owner,
        "  Echo pair ",
        panes=[
            ("echo", {"temperature": "0.2", "repeat": "3", "delay_ms": ""}),
            ("local:smollm2", {"temperature": "1.5", "stop": "END\nSTOP"}),
        ],
    )

    assert response.status_code == 200
    assert "Saved “Echo pair”. " in response.content.decode()
    panes = [
        {"model_key": "echo", "params": {"temperature": 0.2, "repeat": 3}},
        {"model_key": "local:smollm2", "params": {"temperature": 1.5, "stop": ["END", "STOP"]}},
    ]
    assert rows() == [(owner.pk, None, "Echo pair", panes, "Be brief.", False)]


def test_save_as_set_shares_with_one_of_the_persons_teams(research: Research) -> None:
    response = save(research.member, "Team pair", team=str(research.team.pk))

    assert "Saved “Team pair”, shared with Research." in response.content.decode()
    [(owner_id, team_id, *_)] = rows()
    assert (owner_id, team_id) == (research.member.pk, research.team.pk)


def test_the_composer_has_the_save_box_with_the_persons_teams(research: Research) -> None:
    Team.objects.create(name="Not bob's")
    body = page(research.member, reverse("home"))
    assert '<button type="button" popovertarget="save-set">Save as set</button>' in body
    box = body[body.index('<div id="save-set"') :]
    assert f'<option value="{research.team.pk}">Research (everyone in it)</option>' in box
    assert "Not bob&#x27;s" not in box
    assert 'hx-include="#compose"' in box


@pytest.mark.parametrize(
    ("name", "form", "sentence"),
    [
        ("   ", {}, "Give the set a name."),
        ("x" * 121, {}, "The name can be at most 120 characters long."),
        ("Taken", {}, "You already have a set named “Taken”."),
        ("New", {"panes": [("echo", {}), ("nope:x", {})]}, "Pane 2: unknown model 'nope:x'."),
        (
            "New",
            {"panes": [("echo", {"temperature": "7"})]},
            "Pane 1: Echo: Temperature must be a number from 0 to 2; got 7.",
        ),
        ("New", {"panes": []}, "Add at least one model."),
        ("New", {"set_team": "OTHER"}, NOT_YOUR_TEAM),
    ],
)
def test_a_bad_set_is_refused_with_a_sentence_and_nothing_saved(
    owner: Any, name: str, form: dict[str, Any], sentence: str
) -> None:
    other = Team.objects.create(name="Other")
    ComparisonSet.objects.create(owner=owner, name="Taken", panes=ECHO_PAIR)
    before = rows()
    team = form.pop("set_team", "").replace("OTHER", str(other.pk))

    response = save(owner, name, team=team, **form)

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#save-set-result"
    assert f"<li>{html.escape(sentence)}</li>" in response.content.decode()
    assert "Saved" not in response.content.decode()
    assert rows() == before


def test_every_problem_is_named_at_once(owner: Any) -> None:
    response = save(owner, "", team="999", panes=[("echo", {"repeat": "0"})])
    body = html.unescape(response.content.decode())
    assert "Give the set a name." in body
    assert NOT_YOUR_TEAM in body
    assert "Pane 1: Echo: Repeat must be a whole number from 1 to 200; got 0." in body
    assert rows() == []


def test_two_people_may_use_the_same_name(owner: Any, outsider: Any) -> None:
    save(owner, "Pair")
    save(outsider, "Pair")
    assert [(o, n) for o, _, n, *_ in rows()] == [(owner.pk, "Pair"), (outsider.pk, "Pair")]


def test_the_name_is_shown_escaped(owner: Any) -> None:
    response = save(owner, "<b>bold</b>")
    assert "Saved “&lt;b&gt;bold&lt;/b&gt;”" in response.content.decode()
    body = page(owner, reverse("sets"))
    assert "<b>bold</b>" not in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body


def test_someone_elses_endpoint_model_cannot_go_into_a_set(owner: Any, outsider: Any) -> None:
    theirs = make_endpoint(outsider, model_ids=["llama-3"])
    response = save(owner, "Borrowed", panes=[(endpoint_key(theirs), {})])
    assert (
        "Pane 1: &#x27;llama-3&#x27; is not a model of any of your endpoints; pick another model."
        in response.content.decode()
    )
    assert rows() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_name_saved_at_once_is_kept_once(owner: Any) -> None:
    count = 6
    barrier = threading.Barrier(count)
    bodies = [""] * count

    def one(index: int) -> None:
        try:
            barrier.wait()
            bodies[index] = save(owner, "Raced").content.decode()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert ComparisonSet.objects.filter(owner=owner, name="Raced").count() == 1
    assert sum("Saved “Raced”" in b for b in bodies) == 1
    assert sum("You already have a set named “Raced”." in b for b in bodies) == count - 1


def test_anonymous_cannot_save() -> None:
    response = Client().post(reverse("set_save"), {"set_name": "x", **send_form()})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert rows() == []


# --------------------------------------------------------------------------- /sets/


def test_the_sets_page_lists_own_sets_and_the_teams(
    research: Research, team_set: ComparisonSet
) -> None:
    ComparisonSet.objects.create(owner=research.owner, name="Alice alone", panes=ECHO_PAIR[:1])
    ComparisonSet.objects.create(owner=research.outsider, name="Mallory's", panes=ECHO_PAIR)

    alice = page(research.owner, reverse("sets"))
    own, shared = alice.split("Shared with your teams")
    assert "Alice alone" in own and "Echo pair" not in own
    row = shared[shared.index(f'<tr id="set-{team_set.pk}">') :].split("</tr>")[0]
    assert "<td>Research</td>" in row and "<td>bob</td>" in row
    assert "Echo (temperature 0.2, repeat 3)" in row
    assert "Echo (temperature 1.5)" in row
    assert f'href="/?set={team_set.pk}"' in row
    assert f'data-copy="http://testserver/?set={team_set.pk}"' in row
    assert "Mallory" not in alice

    bob = page(research.member, reverse("sets"))
    own, shared = bob.split("Shared with your teams")
    assert "Echo pair" in own and "Rename" in own
    assert "Alice alone" not in bob

    mallory = page(research.outsider, reverse("sets"))
    assert "Mallory&#x27;s" in mallory and "Echo pair" not in mallory


def test_delete_is_offered_to_the_teams_managers_only(
    research: Research, dave: Any, team_set: ComparisonSet
) -> None:
    delete = reverse("set_delete", args=[team_set.pk])
    for manager in (research.owner, research.admin, research.member):
        assert delete in page(manager, reverse("sets"))
    body = page(dave, reverse("sets"))
    assert "Echo pair" in body and delete not in body
    assert reverse("set_rename", args=[team_set.pk]) not in body


def test_anonymous_is_sent_to_sign_in_from_the_sets_page() -> None:
    response = Client().get(reverse("sets"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/sets/"


SET_OWNER, TEAM_OWNER, TEAM_ADMIN, TEAMMATE, OUTSIDER, ANONYMOUS = (
    "set owner",
    "team owner",
    "team admin",
    "teammate",
    "outsider",
    "anonymous",
)


def persona(name: str, research: Research, dave: Any) -> Any:
    return {
        SET_OWNER: research.member,
        TEAM_OWNER: research.owner,
        TEAM_ADMIN: research.admin,
        TEAMMATE: dave,
        OUTSIDER: research.outsider,
        ANONYMOUS: None,
    }[name]


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (SET_OWNER, True),
        (TEAM_OWNER, False),
        (TEAM_ADMIN, False),
        (TEAMMATE, False),
        (OUTSIDER, False),
        (ANONYMOUS, False),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_only_the_owner_renames_a_set(
    research: Research, dave: Any, team_set: ComparisonSet, who: str, allowed: bool, htmx: bool
) -> None:
    url = reverse("set_rename", args=[team_set.pk])
    response = browser(persona(who, research, dave)).post(
        url, {"name": "Renamed"}, **(HTMX if htmx else {})
    )
    team_set.refresh_from_db()
    if allowed:
        assert team_set.name == "Renamed"
        if htmx:
            assert "Renamed “Echo pair” to “Renamed”." in response.content.decode()
        else:
            assert (response.status_code, response["Location"]) == (302, reverse("sets"))
    else:
        assert team_set.name == "Echo pair"
        expected = 302 if who == ANONYMOUS else 404
        assert response.status_code == expected


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (SET_OWNER, True),
        (TEAM_OWNER, False),
        (TEAM_ADMIN, False),
        (TEAMMATE, False),
        (OUTSIDER, False),
        (ANONYMOUS, False),
    ],
)
def test_only_the_owner_changes_who_sees_a_set(
    research: Research, dave: Any, team_set: ComparisonSet, who: str, allowed: bool
) -> None:
    url = reverse("set_sharing", args=[team_set.pk])
    response = browser(persona(who, research, dave)).post(url, {"team": ""}, **HTMX)
    team_set.refresh_from_db()
    if allowed:
        assert team_set.team_id is None
        assert "“Echo pair” is yours only now." in response.content.decode()
    else:
        assert team_set.team_id == research.team.pk
        assert response.status_code == (302 if who == ANONYMOUS else 404)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (SET_OWNER, True),
        (TEAM_OWNER, True),
        (TEAM_ADMIN, True),
        (TEAMMATE, False),
        (OUTSIDER, False),
        (ANONYMOUS, False),
    ],
)
def test_the_owner_and_the_teams_managers_delete_a_set(
    research: Research, dave: Any, team_set: ComparisonSet, who: str, allowed: bool
) -> None:
    url = reverse("set_delete", args=[team_set.pk])
    response = browser(persona(who, research, dave)).post(url, **HTMX)
    if allowed:
        assert not ComparisonSet.objects.exists()
        assert "Deleted “Echo pair”." in response.content.decode()
    else:
        assert ComparisonSet.objects.filter(pk=team_set.pk).exists()
        assert response.status_code == (302 if who == ANONYMOUS else 404)


def test_a_manager_of_another_team_cannot_delete(
    research: Research, team_set: ComparisonSet
) -> None:
    other = Team.objects.create(name="Other")
    Membership.objects.create(team=other, user=research.outsider, role=Role.OWNER)
    response = browser(research.outsider).post(reverse("set_delete", args=[team_set.pk]))
    assert response.status_code == 404
    assert ComparisonSet.objects.filter(pk=team_set.pk).exists()


def test_a_personal_set_is_its_owners_only(research: Research) -> None:
    mine = ComparisonSet.objects.create(owner=research.member, name="Mine", panes=ECHO_PAIR)
    for user in (research.owner, research.admin):
        assert "Mine" not in page(user, reverse("sets"))
        assert browser(user).post(reverse("set_delete", args=[mine.pk])).status_code == 404
        assert notes(page(user, f"/?set={mine.pk}")) == [NOT_AVAILABLE]
    assert ComparisonSet.objects.filter(pk=mine.pk).exists()


def test_a_rename_to_a_taken_name_is_refused_and_kept_in_the_box(owner: Any) -> None:
    first = ComparisonSet.objects.create(owner=owner, name="First", panes=ECHO_PAIR)
    ComparisonSet.objects.create(owner=owner, name="Second", panes=ECHO_PAIR)

    response = browser(owner).post(
        reverse("set_rename", args=[first.pk]), {"name": "Second"}, **HTMX
    )

    body = response.content.decode()
    assert '<p class="error" role="alert">You already have a set named “Second”.</p>' in body
    first.refresh_from_db()
    assert first.name == "First"
    for bad, sentence in (("", "Give the set a name."), ("y" * 121, "at most 120 characters")):
        body = browser(owner).post(reverse("set_rename", args=[first.pk]), {"name": bad}).content
        assert sentence in body.decode()
    first.refresh_from_db()
    assert first.name == "First"


def test_sharing_goes_only_to_a_team_the_owner_is_in(research: Research) -> None:
    mine = ComparisonSet.objects.create(owner=research.member, name="Mine", panes=ECHO_PAIR)
    other = Team.objects.create(name="Other")
    bob = browser(research.member)

    body = bob.post(reverse("set_sharing", args=[mine.pk]), {"team": str(other.pk)}).content
    assert NOT_YOUR_TEAM in body.decode()
    mine.refresh_from_db()
    assert mine.team_id is None

    body = bob.post(reverse("set_sharing", args=[mine.pk]), {"team": research.team.pk}, **HTMX)
    assert "“Mine” is shared with Research." in body.content.decode()
    mine.refresh_from_db()
    assert mine.team_id == research.team.pk
    assert "Mine" in page(research.admin, reverse("sets"))


# --------------------------------------------------------------------------- /?set=


@pytest.mark.parametrize("who", [SET_OWNER, TEAM_OWNER, TEAM_ADMIN, TEAMMATE])
def test_starting_from_a_set_fills_the_page(
    research: Research, dave: Any, team_set: ComparisonSet, who: str
) -> None:
    body = page(persona(who, research, dave), f"/?set={team_set.pk}")

    assert notes(body) == []
    assert picked_models(body) == ["echo", "echo"]
    assert (field_value(body, 0, "temperature"), field_value(body, 0, "repeat")) == ("0.2", "3")
    assert (field_value(body, 1, "temperature"), field_value(body, 1, "repeat")) == ("1.5", "")
    assert "Answer in one line.</textarea>" in body
    assert '<input type="checkbox" name="same_params" value="on" checked>' in body
    assert "<h1>New comparison</h1>" in body  # nothing was sent: no session yet


@pytest.mark.parametrize("query", ["?set=999999", "?set=abc", "?set="])
def test_a_set_that_is_not_there_says_so(owner: Any, query: str) -> None:
    body = page(owner, "/" + query)
    assert notes(body) == [NOT_AVAILABLE]
    assert picked_models(body) == ["local:smollm2", "echo"]


def test_an_outsider_starting_from_a_teams_set_gets_the_default_panes(
    research: Research, team_set: ComparisonSet
) -> None:
    body = page(research.outsider, f"/?set={team_set.pk}")
    assert notes(body) == [NOT_AVAILABLE]
    assert picked_models(body) == ["local:smollm2", "echo"]
    assert "Answer in one line." not in body
    assert 'name="same_params" value="on">' in body  # not checked


def test_anonymous_starting_from_a_set_is_sent_to_sign_in_and_back(
    team_set: ComparisonSet,
) -> None:
    response = Client().get(f"/?set={team_set.pk}")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/%3Fset%3D{team_set.pk}"


def test_a_model_of_the_set_no_longer_offered_is_named_and_left_out(owner: Any) -> None:
    endpoint = make_endpoint(owner, model_ids=["llama-3"])
    gone = endpoint_key(endpoint)
    chosen = ComparisonSet.objects.create(
        owner=owner, name="Mixed", panes=[{"model_key": gone, "params": {}}, *ECHO_PAIR[:1]]
    )
    endpoint.delete()

    body = page(owner, f"/?set={chosen.pk}")

    assert notes(body) == ["“llama-3” is not a model you can pick here; it was left out."]
    assert picked_models(body) == ["echo"]


def test_a_set_of_a_team_the_person_left_is_no_longer_available(
    research: Research, team_set: ComparisonSet
) -> None:
    carols = ComparisonSet.objects.create(
        owner=research.admin, team=research.team, name="Carol's", panes=ECHO_PAIR
    )
    assert picked_models(page(research.owner, f"/?set={team_set.pk}")) == ["echo", "echo"]

    # carol becomes an owner, so that alice may leave; then bob leaves too
    Membership.objects.filter(team=research.team, user=research.admin).update(role=Role.OWNER)
    team_members.leave(research.membership(research.owner))
    team_members.leave(research.membership(research.member))

    # alice, out of the team, no longer sees bob's set nor carol's
    body = page(research.owner, f"/?set={carols.pk}")
    assert notes(body) == [NOT_AVAILABLE]
    assert "Carol&#x27;s" not in page(research.owner, reverse("sets"))
    assert browser(research.owner).post(reverse("set_delete", args=[carols.pk])).status_code == 404
    # bob keeps his own set, no longer shared with the team he left
    team_set.refresh_from_db()
    assert team_set.team_id is None
    assert picked_models(page(research.member, f"/?set={team_set.pk}")) == ["echo", "echo"]
    assert notes(page(research.admin, f"/?set={team_set.pk}")) == [NOT_AVAILABLE]


# --------------------------------------------------------------------------- /?models=


def test_models_in_the_address_fill_the_panes(owner: Any) -> None:
    endpoint = make_endpoint(owner, model_ids=["llama-3"])
    key = endpoint_key(endpoint)

    body = page(owner, f"/?models=echo,{key},local:smollm2,echo")

    assert notes(body) == []
    assert picked_models(body) == ["echo", key, "local:smollm2", "echo"]


def test_unknown_models_in_the_address_are_named_and_skipped(
    owner: Any, outsider: Any, settings: Any
) -> None:
    theirs = make_endpoint(outsider, model_ids=["secret-llama"])

    body = page(owner, f"/?models=nope,echo,{endpoint_key(theirs)}")

    assert notes(body) == [
        "“nope”, “secret-llama” are not models you can pick here; they were left out."
    ]
    assert picked_models(body) == ["echo"]
    body = page(owner, "/?models=<b>x</b>")
    assert "<b>x</b>" not in body
    assert notes(body) == ["“<b>x</b>” is not a model you can pick here; it was left out."]


def test_no_known_model_in_the_address_gives_the_default_panes(owner: Any) -> None:
    body = page(owner, "/?models=nope")
    assert notes(body) == ["“nope” is not a model you can pick here; it was left out."]
    assert picked_models(body) == ["local:smollm2", "echo"]


def test_at_most_the_pane_limit_opens(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_MAX_PANES = 3
    body = page(owner, "/?models=" + ",".join(["echo"] * 5))
    assert picked_models(body) == ["echo"] * 3
    assert notes(body) == ["Compare at most 3 models at once; the first 3 are open."]
