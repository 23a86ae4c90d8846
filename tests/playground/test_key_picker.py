"""A pane's Key select: it offers the keys its person may use for the pane's model (their
own, their teams', the site's), for that model's provider and server only; the pick is
saved by Send and selected again after a reload; it follows a change of model; and a pane
answers with the key picked, or else the first of own > active team > site > environment,
as the provider's server receives it."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from playground.catalog import catalog
from playground.credentials import model_base_url, seal_parts
from playground.models import Credential, Membership, Pane, Response, Session, Team, Turn
from playground.tasks import run_turn as run_turn_task
from playground.teams import set_active_team
from tests.playground.helpers import run_turn, send_form, sse_chunks

HTMX = {"HTTP_HX_REQUEST": "true"}
GPT = "openai:gpt-4.1-mini"
GPT_NAME = "OpenAI · GPT-4.1 mini"
CLAUDE = "anthropic:claude-haiku-4-5"
CLAUDE_KEY = "sk-ant-0000000000000000000000000000CLD"

OWN = "sk-own-0000000000000000000000000OWN1"
TEAM = "sk-team-000000000000000000000000TEAM"
ORG = "sk-org-00000000000000000000000000ORG1"
ENV = "sk-env-00000000000000000000000000ENV1"


def openai_url() -> str:
    return model_base_url(catalog()[GPT])


@pytest.fixture(autouse=True)
def _no_site_keys(settings: Any) -> None:
    """No key in the environment unless a test puts one there."""
    settings.PLAYGROUND_PROVIDER_KEYS = {}
    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 0
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 0


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The turns Send handed to the worker (no worker runs here; tests run them)."""
    turns: list[int] = []
    monkeypatch.setattr(run_turn_task, "delay", lambda turn_id, ids: turns.append(turn_id))
    return turns


def key(
    label: str,
    secret: str,
    *,
    user: Any = None,
    team: Team | None = None,
    org: bool = False,
    provider: str = "openai",
    base_url: str = "",
    enabled: bool = True,
) -> Credential:
    scope = "org" if org else "team" if team else "user"
    row = Credential(
        scope=scope,
        user=user if scope == "user" else None,
        team=team,
        provider=provider,
        label=label,
        base_url=base_url
        or model_base_url(next(m for m in catalog().values() if m.provider == provider)),
        enabled=enabled,
    )
    seal_parts(row, {"api_key": secret})
    row.save()
    return row


def team_of(name: str, *members: Any, role: str = "member") -> Team:
    team = Team.objects.create(name=name)
    for member in members:
        Membership.objects.create(team=team, user=member, role=role)
    return team


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_with(owner: Any, *models: str, picked: Credential | None = None) -> Session:
    session = Session.objects.create(owner=owner, title="keys")
    for position, model in enumerate(models):
        Pane.objects.create(
            session=session,
            position=position,
            model_key=model,
            credential=picked if position == 0 else None,
        )
    return session


def key_select(page: str, position: int = 0) -> str:
    """The <select> of a pane's Key, or "" when the pane has none."""
    select = rf'<select name="pane-{position}-credential" aria-label="Key">(.*?)</select>'
    match = re.search(select, page, flags=re.DOTALL)
    return match.group(1) if match else ""


def options(select: str) -> list[tuple[str, str, bool]]:
    """(value, text, selected) of each option."""
    return [
        (value, html.unescape(text), bool(selected))
        for value, selected, text in re.findall(
            r'<option value="([^"]*)"( selected)?>(.*?)</option>', select
        )
    ]


def page_of(client: Client, session: Session) -> str:
    text = client.get(reverse("session", args=[session.pk])).content.decode()
    for secret in (OWN, TEAM, ORG, ENV, CLAUDE_KEY):
        assert secret not in text
    return text


def picker_form(model: str, credential: str = "", prompt: str = "Hi") -> dict[str, Any]:
    form = send_form(prompt, panes=[(model, {})])
    form["pane-0-credential"] = credential
    return form


# ---------------------------------------------------------------- what the picker offers


@pytest.mark.django_db
def test_the_picker_offers_own_team_and_site_keys_for_the_models_provider_and_server_only(
    owner: Any, outsider: Any, django_user_model: Any
) -> None:
    research = team_of("research", owner)
    set_active_team(owner, research)
    elsewhere = team_of("elsewhere", outsider)
    mine = key("mine", OWN, user=owner)
    shared = key("shared", TEAM, team=research)
    site = key("site-wide", ORG, org=True)
    key("theirs", "sk-theirs-0000000000000000000000000000", user=outsider)
    key("other-team", "sk-other-0000000000000000000000000000", team=elsewhere)
    key("off", "sk-off-00000000000000000000000000000000", user=owner, enabled=False)
    claude = key("claude", CLAUDE_KEY, user=owner, provider="anthropic")
    key(
        "gateway",
        "sk-gw-000000000000000000000000000000GW",
        user=owner,
        base_url="https://gateway.example/v1",
    )
    session = session_with(owner, GPT, CLAUDE, "echo")

    page = page_of(signed_in(owner), session)

    assert options(key_select(page, 0)) == [
        ("", "Automatic (your key 'mine')", False),
        (str(mine.pk), "your key 'mine' …OWN1", False),
        (str(shared.pk), "team key 'shared' …TEAM", False),
        (str(site.pk), "site key 'site-wide' …ORG1", False),
    ]
    assert options(key_select(page, 1)) == [
        ("", "Automatic (your key 'claude')", False),
        (str(claude.pk), "your key 'claude' …0CLD", False),
    ]
    assert key_select(page, 2) == ""  # Echo takes no key
    assert "pane-2-credential" not in page


@pytest.mark.django_db
def test_a_teammate_sees_the_teams_key_in_the_picker_but_not_a_members_own(
    owner: Any, django_user_model: Any
) -> None:
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    research = team_of("research", owner, bob)
    shared = key("shared", TEAM, team=research)
    key("alices", OWN, user=owner)
    session = session_with(bob, GPT)

    page = page_of(signed_in(bob), session)

    # Not active: Automatic passes the team key by, but it may be picked.
    assert options(key_select(page)) == [
        ("", "Automatic (none yet: add a key under Keys)", False),
        (str(shared.pk), "team key 'shared' …TEAM", False),
    ]


@pytest.mark.django_db
def test_automatic_names_the_environment_when_the_site_has_a_key(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": ENV}
    page = page_of(signed_in(owner), session_with(owner, GPT))
    assert options(key_select(page)) == [("", "Automatic (site environment)", False)]


@pytest.mark.django_db
def test_the_model_picker_offers_a_model_that_a_saved_key_answers_for(owner: Any) -> None:
    client = signed_in(owner)
    before = client.get(reverse("home")).content.decode()
    assert f'<option value="{GPT}" disabled>{GPT_NAME} (needs OPENAI_API_KEY)</option>' in before

    key("mine", OWN, user=owner)
    after = client.get(reverse("home")).content.decode()

    assert f'<option value="{GPT}">{GPT_NAME}</option>' in after
    assert f'<option value="{CLAUDE}" disabled>' in after  # no key for Anthropic


# ---------------------------------------------------------------- the pick, kept


@pytest.mark.django_db
def test_the_key_picked_is_saved_by_send_and_selected_after_a_reload(
    owner: Any, sent: list[int]
) -> None:
    research = team_of("research", owner)
    key("mine", OWN, user=owner)
    shared = key("shared", TEAM, team=research)
    client = signed_in(owner)

    answer = client.post(reverse("send_new"), picker_form(GPT, str(shared.pk)), **HTMX)

    assert answer.status_code == 200, answer.content
    pane = Pane.objects.get()
    assert pane.credential_id == shared.pk
    response = Response.objects.get()
    assert (response.credential_id, response.key_scope, response.key_label) == (
        shared.pk,
        "team",
        "team key 'shared'",
    )
    page = page_of(client, pane.session)
    assert (str(shared.pk), "team key 'shared' …TEAM", True) in options(key_select(page))

    # Back to Automatic: the next Send forgets the pick, and so does the page.
    follow_up = picker_form(GPT, "", "Again")
    assert (
        client.post(reverse("send", args=[pane.session_id]), follow_up, **HTMX).status_code == 200
    )
    pane.refresh_from_db()
    assert pane.credential_id is None
    assert not any(
        selected for _, _, selected in options(key_select(page_of(client, pane.session)))
    )
    assert len(sent) == 2


@pytest.mark.django_db
def test_a_key_no_longer_usable_stays_picked_and_send_says_so(owner: Any, sent: list[int]) -> None:
    mine = key("mine", OWN, user=owner)
    key("spare", ORG, org=True)
    session = session_with(owner, GPT, picked=mine)
    Credential.objects.filter(pk=mine.pk).update(enabled=False)
    client = signed_in(owner)

    page = page_of(client, session)

    assert options(key_select(page))[:2] == [
        ("", "Automatic (site key 'spare')", False),
        (str(mine.pk), "the key picked before (no longer available)", True),
    ]
    answer = client.post(reverse("send", args=[session.pk]), picker_form(GPT, str(mine.pk)), **HTMX)
    assert f"Pane 1: the key picked for {GPT_NAME} cannot be used with it" in html.unescape(
        answer.content.decode()
    )
    assert (Turn.objects.count(), sent) == (0, [])


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["another person's", "another team's", "another provider's"])
def test_a_key_that_is_not_the_persons_to_pick_is_refused_at_send(
    owner: Any, outsider: Any, sent: list[int], whose: str
) -> None:
    if whose == "another person's":
        other = key("theirs", OWN, user=outsider)
    elif whose == "another team's":
        other = key("theirs", TEAM, team=team_of("elsewhere", outsider))
    else:
        other = key("claude", OWN, user=owner, provider="anthropic")
    key("mine", OWN, user=owner)

    answer = signed_in(owner).post(reverse("send_new"), picker_form(GPT, str(other.pk)), **HTMX)

    assert "cannot be used with it" in html.unescape(answer.content.decode())
    assert (Session.objects.count(), Pane.objects.count(), sent) == (0, 0, [])


@pytest.mark.django_db
def test_without_any_key_send_says_how_to_add_one(owner: Any, sent: list[int]) -> None:
    answer = signed_in(owner).post(reverse("send_new"), picker_form(GPT), **HTMX)
    assert (
        f"Pane 1: {GPT_NAME} needs a key: add your OpenAI key under Keys, or ask a team admin "
        "to share one." in html.unescape(answer.content.decode())
    )
    assert (Session.objects.count(), sent) == (0, [])


# ---------------------------------------------------------------- a change of model


@pytest.mark.django_db
def test_the_key_choices_follow_a_change_of_model(owner: Any) -> None:
    mine = key("mine", OWN, user=owner)
    claude = key("claude", CLAUDE_KEY, user=owner, provider="anthropic")
    client = signed_in(owner)
    url = reverse("pane_params", args=[0])

    def params(model: str, credential: int | str) -> str:
        query = {"pane": "0", "pane-0-model": model, "pane-0-credential": str(credential)}
        answer = client.get(url, query, **HTMX)
        assert answer.status_code == 200
        return answer.content.decode()

    # To Claude: its keys, and the OpenAI key picked before falls back to Automatic.
    assert options(key_select(params(CLAUDE, mine.pk))) == [
        ("", "Automatic (your key 'claude')", False),
        (str(claude.pk), "your key 'claude' …0CLD", False),
    ]
    # A pick that fits the model now picked is kept.
    assert (str(mine.pk), "your key 'mine' …OWN1", True) in options(
        key_select(params(GPT, mine.pk))
    )
    assert key_select(params("echo", mine.pk)) == ""

    # A pane added to the page has the select too.
    added = client.get(reverse("pane_editor"), {"pane": "0", "model": GPT}, **HTMX)
    assert options(key_select(added.content.decode(), 1)) == [
        ("", "Automatic (your key 'mine')", False),
        (str(mine.pk), "your key 'mine' …OWN1", False),
    ]


# ---------------------------------------------------------------- what the provider receives


def sent_with(secret: str) -> bytes:
    return f"Bearer {secret}".encode()


@sync_to_async
def send_as(user: Any, form: dict[str, Any]) -> int:
    """Send as ``user`` and give back the turn handed to the worker."""
    turns: list[int] = []
    original = run_turn_task.delay
    run_turn_task.delay = lambda turn_id, ids: turns.append(turn_id)  # type: ignore[method-assign]
    try:
        answer = signed_in(user).post(reverse("send_new"), form, **HTMX)
    finally:
        run_turn_task.delay = original  # type: ignore[method-assign]
    assert answer.status_code == 200, answer.content
    [turn_id] = turns
    return turn_id


async def authorization_received(user: Any, form: dict[str, Any]) -> list[bytes]:
    """Send, run the turn against a mocked OpenAI, and give back the Authorization header
    bytes each call carried."""
    received: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.extend(v for k, v in request.headers.raw if k.lower() == b"authorization")
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=b"".join(sse_chunks(["Hello"])),
        )

    turn_id = await send_as(user, form)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(f"{openai_url()}/chat/completions").mock(side_effect=answer)
        await run_turn(turn_id)
    done = await sync_to_async(lambda: list(Response.objects.filter(turn_id=turn_id)))()
    assert [r.text for r in done] == ["Hello"]
    return received


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_context")
async def test_a_pane_sends_with_the_key_picked_for_it(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": ENV}

    @sync_to_async
    def keys() -> Credential:
        research = team_of("research", owner)
        key("mine", OWN, user=owner)
        key("site", ORG, org=True)
        return key("shared", TEAM, team=research)

    shared = await keys()
    assert await authorization_received(owner, picker_form(GPT, str(shared.pk))) == [
        sent_with(TEAM)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_context")
@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"own", "team", "org", "env"}, OWN),
        ({"team", "org", "env"}, TEAM),
        ({"inactive team", "org", "env"}, ORG),
        ({"org", "env"}, ORG),
        ({"env"}, ENV),
    ],
)
async def test_automatic_takes_own_then_the_active_teams_then_the_sites_then_the_environment(
    owner: Any, settings: Any, present: set[str], expected: str
) -> None:
    if "env" in present:
        settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": ENV}

    @sync_to_async
    def keys() -> None:
        research = team_of("research", owner)
        if "team" in present:
            set_active_team(owner, research)
            key("shared", TEAM, team=research)
        if "inactive team" in present:
            key("shared", TEAM, team=research)  # a team of hers, but not the active one
        if "own" in present:
            key("mine", OWN, user=owner)
        if "org" in present:
            key("site", ORG, org=True)

    await keys()
    assert await authorization_received(owner, picker_form(GPT, "")) == [sent_with(expected)]
