"""Keys: a person's own provider keys (/keys/) and a team's (/teams/<id>/keys/), added,
changed, replaced, disabled, tested and deleted. A key is sealed to its row and never
shown again, not even after a form with errors; a team's keys are managed by its owners
and admins only; everyone else is told there is no such key or team."""

from __future__ import annotations

import html
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from playground import vault
from playground.catalog import catalog
from playground.credentials import model_base_url, seal_parts
from playground.models import Credential, Membership, Pane, Session, Team

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
SECRET = "sk-proj-7c1f0e9a2b4d6f8h0j2k4m6nWXYZ"
OTHER_SECRET = "sk-proj-99887766554433221100abcdQRST"
HUNYUAN_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
HUNYUAN_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLEKEY"


def openai_url() -> str:
    return model_base_url(catalog()["openai:gpt-4.1-mini"])


@pytest.fixture
def team(owner: Any) -> Team:
    """Team "research", which alice (the owner persona) owns."""
    team = Team.objects.create(name="research")
    Membership.objects.create(team=team, user=owner, role="owner")
    return team


@pytest.fixture
def teammate(django_user_model: Any, team: Team) -> Any:
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    Membership.objects.create(team=team, user=bob, role="member")
    return bob


@pytest.fixture
def team_admin(django_user_model: Any, team: Team) -> Any:
    carol = django_user_model.objects.create_user("carol", "carol@example.com", "pw")
    Membership.objects.create(team=team, user=carol, role="admin")
    return carol


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response: Any) -> str:
    """The page as a person reads it; no key is ever in it."""
    text = html.unescape(response.content.decode())
    for secret in (SECRET, OTHER_SECRET, HUNYUAN_ID, HUNYUAN_KEY):
        assert secret not in text
    return text


def saved_key(
    label: str = "work",
    *,
    user: Any = None,
    team: Team | None = None,
    provider: str = "openai",
    secret: str = SECRET,
    base_url: str = "",
) -> Credential:
    """A key as the Keys page saves it."""
    key = Credential(
        scope="team" if team else "user",
        user=None if team else user,
        team=team,
        provider=provider,
        label=label,
        base_url=base_url or openai_url(),
        added_by=user,
    )
    seal_parts(key, {"api_key": secret})
    key.save()
    return key


def add_form(**changes: Any) -> dict[str, str]:
    form = {
        "provider": "openai",
        "fields_for": "openai",
        "label": "work",
        "base_url": openai_url(),
        "part-api_key": SECRET,
    }
    form.update(changes)
    return form


# ---------------------------------------------------------------- adding


def test_adding_a_key_seals_it_to_its_row_and_the_list_shows_only_its_hint(
    owner: Any, owner_client: Client
) -> None:
    answer = owner_client.post(reverse("keys"), add_form())

    assert answer.status_code == 302
    assert answer["Location"] == reverse("keys")
    key = Credential.objects.get()
    assert (key.scope, key.user_id, key.team_id) == ("user", owner.pk, None)
    assert (key.provider, key.label, key.base_url) == ("openai", "work", openai_url())
    assert key.added_by_id == owner.pk
    assert key.hint == "…WXYZ"
    assert SECRET not in key.ciphertext
    assert vault.open_sealed(key.ciphertext, key.binding) == {"api_key": SECRET}

    page = body(owner_client.get(reverse("keys")))
    assert "Saved your key 'work' for OpenAI." in page
    row = page.split(f'id="key-{key.pk}"')[1].split("</tr>")[0]
    for shown in ("OpenAI", "work", "you", "…WXYZ", "by alice", "never", "enabled", "not tested"):
        assert shown in row
    assert key.ciphertext not in page


def test_adding_through_htmx_answers_with_the_list_and_an_empty_form(
    owner_client: Client,
) -> None:
    answer = owner_client.post(reverse("keys"), add_form(label="lab"), **HTMX)

    assert answer.status_code == 200
    assert answer["HX-Push-Url"] == reverse("keys")
    page = body(answer)
    assert page.startswith('\n<main class="endpoints keys" id="keys-main">')
    assert "<html" not in page
    assert "Saved your key 'lab' for OpenAI." in page
    assert 'name="label" value=""' in page


def test_a_key_with_several_parts_keeps_them_all_and_shows_none(owner_client: Client) -> None:
    hunyuan = model_base_url(catalog()["hunyuan:hunyuan-t1-latest"])
    answer = owner_client.post(
        reverse("keys"),
        {
            "provider": "hunyuan",
            "fields_for": "hunyuan",
            "label": "tencent",
            "base_url": hunyuan,
            "part-api_key": HUNYUAN_ID,
            "part-secret_key": HUNYUAN_KEY,
            "part-region": "ap-guangzhou",
        },
    )
    assert answer.status_code == 302
    key = Credential.objects.get()
    assert vault.open_sealed(key.ciphertext, key.binding) == {
        "api_key": HUNYUAN_ID,
        "secret_key": HUNYUAN_KEY,
        "region": "ap-guangzhou",
    }
    assert key.hint == "…MPLE"
    body(owner_client.get(reverse("keys")))


def test_the_form_asks_for_the_parts_of_the_provider_picked(owner_client: Client) -> None:
    page = body(owner_client.get(reverse("keys")))
    assert 'name="provider" hx-get="/keys/fields/"' in page
    assert '<option value="openai">OpenAI</option>' in page
    assert '<option value="anthropic">Anthropic</option>' in page
    assert '<option value="echo"' not in page  # takes no key

    fields = owner_client.get(reverse("key_fields"), {"provider": "hunyuan"}, **HTMX)
    partial = body(fields)
    assert partial.lstrip().startswith('<div id="key-fields"')
    assert '<input type="hidden" name="fields_for" value="hunyuan">' in partial
    # One server for Hunyuan's models: preselected, and no empty choice.
    url = model_base_url(catalog()["hunyuan:hunyuan-t1-latest"])
    assert f'<option value="{url}" selected>' in partial
    assert "Pick a server" not in partial
    for name, kind in (("api_key", "password"), ("secret_key", "password"), ("region", "text")):
        assert (
            f'name="part-{name}" type="{kind}" value="" autocomplete="off" spellcheck="false"'
            in partial
        )
    assert 'SecretId <span class="required">(required)</span>' in partial
    assert 'Region <span class="muted">(optional)</span>' in partial

    unknown = body(owner_client.get(reverse("key_fields"), {"provider": "nope"}, **HTMX))
    assert "Pick a provider from the list." in unknown


def test_changing_the_provider_without_javascript_shows_its_fields_and_saves_nothing(
    owner_client: Client,
) -> None:
    answer = owner_client.post(
        reverse("keys"), add_form(provider="hunyuan", label="tencent"), **HTMX
    )
    page = body(answer)
    assert Credential.objects.count() == 0
    assert 'name="part-secret_key"' in page
    assert '<option value="hunyuan" selected>' in page
    assert 'value="tencent"' in page
    assert 'class="error"' not in page


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"part-api_key": ""}, "Enter the API key."),
        ({"part-api_key": "sk-proj 7c1f0e9a2b4d"}, "API key cannot contain spaces or line breaks."),
        ({"provider": "nope", "fields_for": "nope"}, "Pick a provider from the list."),
        ({"provider": "echo", "fields_for": "echo"}, "Pick a provider from the list."),
        (
            {"base_url": "https://attacker.example/v1"},
            "Pick one of the servers listed for OpenAI: a key is only ever sent to the server "
            "it was saved for.",
        ),
        ({"base_url": ""}, "Pick one of the servers listed for OpenAI"),
        ({"label": "   "}, "Give the key a label, such as “work”"),
        ({"label": "x" * 81}, "The label is longer than 80 characters."),
        ({"label": "Existing"}, "You already have a key labelled “Existing”; pick another label."),
    ],
)
def test_bad_input_gets_a_sentence_changes_nothing_and_never_echoes_the_key(
    owner: Any, owner_client: Client, changes: dict[str, str], sentence: str
) -> None:
    existing = saved_key("existing", user=owner, provider="anthropic", secret=OTHER_SECRET)
    before = list(Credential.objects.values())

    answer = owner_client.post(reverse("keys"), add_form(**changes), **HTMX)

    assert answer.status_code == 200
    page = body(answer)
    assert sentence in page
    assert list(Credential.objects.values()) == before
    assert existing.ciphertext not in page
    assert 'name="part-api_key" type="password" value=""' in page
    if changes.get("provider") != "nope" and changes.get("provider") != "echo":
        assert '<option value="openai" selected>' in page  # the form keeps the provider
    label = changes.get("label", "work").strip()
    if label and len(label) <= 80:
        assert f'name="label" value="{label}"' in page  # and the label


def test_two_people_and_a_person_and_their_team_may_use_the_same_label(
    owner: Any, outsider: Any, team: Team, owner_client: Client
) -> None:
    saved_key("work", user=outsider, secret=OTHER_SECRET)
    saved_key("work", team=team, secret=OTHER_SECRET)
    assert owner_client.post(reverse("keys"), add_form()).status_code == 302
    assert Credential.objects.filter(scope="user", user=owner, label="work").exists()


# ---------------------------------------------------------------- changing


def test_changing_the_label_keeps_the_key_and_the_row(owner: Any, owner_client: Client) -> None:
    key = saved_key(user=owner)
    form = body(owner_client.get(reverse("key_edit", args=[key.pk])))
    assert "Change “work”" in form
    assert "…WXYZ" in form
    assert 'name="part-api_key" type="password" value=""' in form
    assert 'name="provider"' not in form  # the provider and server stay: they are sealed in

    answer = owner_client.post(reverse("key_edit", args=[key.pk]), {"label": "personal"})

    assert answer.status_code == 302
    row = Credential.objects.get()
    assert (row.pk, row.label, row.ciphertext, row.hint) == (
        key.pk,
        "personal",
        key.ciphertext,
        "…WXYZ",
    )


def test_replacing_the_key_seals_the_new_one_in_the_same_row(
    owner: Any, owner_client: Client
) -> None:
    key = saved_key(user=owner)
    Credential.objects.filter(pk=key.pk).update(test_passed=True, test_message="connected")
    pane = Pane.objects.create(
        session=Session.objects.create(owner=owner), position=0, model_key="openai:gpt-5",
        credential=key,
    )  # fmt: skip

    answer = owner_client.post(
        reverse("key_edit", args=[key.pk]), {"label": "work", "part-api_key": OTHER_SECRET}, **HTMX
    )

    page = body(answer)
    assert "You replaced the key of your key 'work'." in page
    row = Credential.objects.get()
    assert row.pk == key.pk
    assert vault.open_sealed(row.ciphertext, row.binding) == {"api_key": OTHER_SECRET}
    assert row.hint == "…QRST"
    assert row.test_passed is None  # the old key's test says nothing of the new one
    pane.refresh_from_db()
    assert pane.credential_id == key.pk


@pytest.mark.parametrize(
    ("form", "sentence"),
    [
        ({"label": "renamed", "part-api_key": "two words"}, "cannot contain spaces"),
        ({"label": "", "part-api_key": OTHER_SECRET}, "Give the key a label"),
        ({"label": "taken"}, "You already have a key labelled “taken”"),
    ],
)
def test_a_refused_change_changes_nothing(
    owner: Any, owner_client: Client, form: dict[str, str], sentence: str
) -> None:
    key = saved_key(user=owner)
    saved_key("taken", user=owner, provider="anthropic")
    before = list(Credential.objects.order_by("pk").values())

    page = body(owner_client.post(reverse("key_edit", args=[key.pk]), form, **HTMX))

    assert sentence in page
    assert list(Credential.objects.order_by("pk").values()) == before


def test_disabling_and_enabling_a_key(owner: Any, owner_client: Client) -> None:
    key = saved_key(user=owner)
    page = body(owner_client.post(reverse("key_toggle", args=[key.pk]), **HTMX))
    assert "Disabled your key 'work'" in page
    assert not Credential.objects.get().enabled
    assert f'<tr id="key-{key.pk}" class="disabled">' in page
    row = page.split(f'id="key-{key.pk}"')[1].split("</tr>")[0]
    assert ">disabled<" in row and ">Enable<" in row

    answer = owner_client.post(reverse("key_toggle", args=[key.pk]))
    assert answer.status_code == 302
    assert Credential.objects.get().enabled
    assert "Enabled your key 'work'." in body(owner_client.get(reverse("keys")))


def test_deleting_a_key_leaves_the_panes_that_picked_it_on_automatic(
    owner: Any, owner_client: Client
) -> None:
    key = saved_key(user=owner)
    pane = Pane.objects.create(
        session=Session.objects.create(owner=owner), position=0, model_key="openai:gpt-5",
        credential=key,
    )  # fmt: skip
    page = body(owner_client.post(reverse("key_delete", args=[key.pk]), **HTMX))
    assert "Deleted your key 'work'." in page
    assert not Credential.objects.exists()
    pane.refresh_from_db()
    assert pane.credential_id is None


def test_test_connection_asks_a_worker_with_the_id_only_and_the_list_shows_the_result(
    owner: Any, owner_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from django.utils import timezone

    from playground.redis_sync import redis_client
    from playground.tasks import check_credential

    asked: list[tuple[Any, ...]] = []

    def worker(*args: Any) -> None:  # stands in for the worker: records, then answers
        asked.append(args)
        Credential.objects.filter(pk=args[0]).update(
            test_passed=False, tested_at=timezone.now(), test_message="OpenAI rejected the key."
        )
        redis_client().rpush(args[1], "OpenAI rejected the key.")

    monkeypatch.setattr(check_credential, "delay", worker)
    key = saved_key(user=owner)

    waiting = body(owner_client.post(reverse("key_test", args=[key.pk]), **HTMX))

    [(credential_id, reply_to)] = asked
    assert credential_id == key.pk and reply_to.startswith(f"pg:conn:{owner.pk}:")
    [poll] = re.findall(r'hx-get="([^"]+)"', waiting)
    assert body(owner_client.get(poll, **HTMX)) == (
        '<span class="test-result">OpenAI rejected the key.</span>'
    )
    page = body(owner_client.get(reverse("keys")))
    row = page.split(f'id="key-{key.pk}"')[1].split("</tr>")[0]
    assert "<strong>failed</strong>" in row and "OpenAI rejected the key." in row

    followed = owner_client.post(reverse("key_test", args=[key.pk]), follow=True)
    assert followed.redirect_chain[0][0].startswith("/connection-tests/")
    assert "OpenAI rejected the key." in body(followed)
    assert f'href="{reverse("keys")}"' in body(followed)  # the way back


# ---------------------------------------------------------------- teams


def test_a_team_admin_adds_a_team_key_that_the_teams_owner_then_manages(
    owner: Any, team: Team, team_admin: Any
) -> None:
    carol = signed_in(team_admin)
    url = reverse("team_keys", args=[team.pk])
    assert "Keys of team research" in body(carol.get(url))

    answer = carol.post(url, add_form(label="shared"))

    assert answer.status_code == 302 and answer["Location"] == url
    key = Credential.objects.get()
    assert (key.scope, key.team_id, key.user_id, key.added_by_id) == (
        "team",
        team.pk,
        None,
        team_admin.pk,
    )
    assert vault.open_sealed(key.ciphertext, key.binding) == {"api_key": SECRET}

    alice = signed_in(owner)
    page = body(alice.get(url))
    row = page.split(f'id="key-{key.pk}"')[1].split("</tr>")[0]
    assert "team research" in row and "by carol" in row and "…WXYZ" in row
    # Her own page lists her keys only, and links to the team's.
    own = body(alice.get(reverse("keys")))
    assert "shared" not in own
    assert f'href="{url}"' in own
    assert alice.post(reverse("key_toggle", args=[key.pk])).status_code == 302
    assert not Credential.objects.get().enabled


def test_a_plain_member_can_neither_see_nor_add_nor_change_team_keys(
    team: Team, teammate: Any
) -> None:
    key = saved_key("shared", team=team)
    bob = signed_in(teammate)
    url = reverse("team_keys", args=[team.pk])
    before = list(Credential.objects.values())

    assert bob.get(url).status_code == 404
    assert bob.post(url, add_form(label="mine")).status_code == 404
    for name in ("key_edit", "key_toggle", "key_delete", "key_test"):
        assert bob.post(reverse(name, args=[key.pk]), {"label": "x"}).status_code == 404
    assert bob.get(reverse("key_edit", args=[key.pk])).status_code == 404
    assert list(Credential.objects.values()) == before
    # His own Keys page does not list the team's key either.
    assert "shared" not in body(bob.get(reverse("keys")))


def test_an_outsider_is_told_no_such_key_or_team(
    owner: Any, team: Team, outsider: Any, outsider_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.tasks import check_credential

    monkeypatch.setattr(check_credential, "delay", lambda *a: pytest.fail("a worker was asked"))
    mine = saved_key(user=owner)
    shared = saved_key("shared", team=team, secret=OTHER_SECRET)
    before = list(Credential.objects.values())

    for key in (mine, shared):
        assert outsider_client.get(reverse("key_edit", args=[key.pk])).status_code == 404
        for name in ("key_edit", "key_toggle", "key_delete", "key_test"):
            form = {"label": "stolen", "part-api_key": OTHER_SECRET}
            assert outsider_client.post(reverse(name, args=[key.pk]), form).status_code == 404
    url = reverse("team_keys", args=[team.pk])
    assert outsider_client.get(url).status_code == 404
    assert outsider_client.post(url, add_form(label="x")).status_code == 404
    assert outsider_client.get(reverse("team_keys", args=[9999])).status_code == 404
    assert list(Credential.objects.values()) == before
    page = body(outsider_client.get(reverse("keys")))
    assert "You have no keys yet." in page and "research" not in page


def test_a_team_admin_cannot_manage_a_members_personal_key(teammate: Any, team_admin: Any) -> None:
    key = saved_key("bobs", user=teammate)
    carol = signed_in(team_admin)
    assert carol.get(reverse("key_edit", args=[key.pk])).status_code == 404
    assert carol.post(reverse("key_delete", args=[key.pk])).status_code == 404
    assert Credential.objects.filter(pk=key.pk).exists()


def test_anonymous_is_sent_to_sign_in(owner: Any, team: Team, client: Client) -> None:
    key = saved_key(user=owner)
    login = reverse("login")
    gets = [reverse("keys"), reverse("key_fields"), reverse("team_keys", args=[team.pk])]
    posts = [
        reverse("keys"),
        reverse("team_keys", args=[team.pk]),
        *(reverse(name, args=[key.pk]) for name in ("key_edit", "key_toggle", "key_delete")),
        reverse("key_test", args=[key.pk]),
    ]
    for url in gets + [reverse("key_edit", args=[key.pk])]:
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith(login), url
    for url in posts:
        answer = client.post(url, add_form(label="anon"))
        assert answer.status_code == 302 and answer["Location"].startswith(login), url
    assert list(Credential.objects.values_list("pk", "label", "enabled")) == [
        (key.pk, "work", True)
    ]


def test_the_playground_links_to_keys_and_endpoints(owner_client: Client) -> None:
    page = owner_client.get(reverse("home")).content.decode()
    account = page.split('<div class="account">')[1].split("</div>")[0]
    assert f'<a href="{reverse("keys")}">Keys</a>' in account
    assert f'<a href="{reverse("endpoints")}">Endpoints</a>' in account


# ---------------------------------------------------------------- vault keys


def test_rotating_the_vault_keys_re_encrypts_credentials_and_keeps_their_binding(
    owner: Any, team: Team, settings: Any
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PLAYGROUND_VAULT_KEYS = [old]
    mine = saved_key(user=owner)
    shared = saved_key("shared", team=team, secret=OTHER_SECRET)
    settings.PLAYGROUND_VAULT_KEYS = [new, old]

    out = StringIO()
    call_command("rotate_vault_keys", stdout=out)

    assert out.getvalue() == "Encrypted 2 saved key(s) again under the first vault key.\n"
    settings.PLAYGROUND_VAULT_KEYS = [new]  # the old vault key dropped
    for key, secret in ((mine, SECRET), (shared, OTHER_SECRET)):
        key.refresh_from_db()
        assert vault.open_sealed(key.ciphertext, key.binding) == {"api_key": secret}


def test_rotating_names_the_credentials_it_cannot_read(owner: Any, settings: Any) -> None:
    settings.PLAYGROUND_VAULT_KEYS = [Fernet.generate_key().decode()]
    key = saved_key(user=owner)
    settings.PLAYGROUND_VAULT_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match=rf"\(credential ids {key.pk}\)"):
        call_command("rotate_vault_keys", stdout=StringIO())
    assert Credential.objects.get().ciphertext == key.ciphertext
