"""Keys in Django admin: an admin adds, replaces, tests, disables and enables the
organisation's and teams' keys; a secret is typed once and never shown back (no admin page,
no history entry holds it or its ciphertext); personal keys are metadata only."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from playground import vault
from playground.admin import credentials as credential_admin
from playground.admin.credential_form import KEY_AGAIN
from playground.credentials import seal_parts
from playground.models import Credential, Scope, Team

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-Zq8vXw3NmT5pL0a1b2c3"
OTHER_SECRET = "sk-other-Qq1Ww2Ee3Rr4Tt5Yy6u7i8"
OPENAI = "https://api.openai.com/v1"
ADD = reverse("admin:playground_credential_add")
LIST = reverse("admin:playground_credential_changelist")


def change_url(row: Credential) -> str:
    return reverse("admin:playground_credential_change", args=[row.pk])


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def key_form(**fields: str) -> dict[str, str]:
    """The add/change form as a browser posts it: an organisation key for OpenAI."""
    return {
        "scope": "org",
        "team": "",
        "provider": "openai",
        "label": "shared",
        "base_url": "",
        "enabled": "on",
        **fields,
    }


def saved_key(label: str = "shared", secret: str = SECRET, **fields: Any) -> Credential:
    """A credential as the site's Keys page or this admin saves it."""
    row = Credential(
        provider="openai", label=label, base_url=OPENAI, **{"scope": Scope.ORG, **fields}
    )
    seal_parts(row, {"api_key": secret})
    row.save()
    return row


@pytest.fixture
def team() -> Team:
    return Team.objects.create(name="research")


def pages_of(client: Client, row: Credential) -> list[str]:
    """Every admin page that shows this key or its history."""
    urls = [
        LIST,
        ADD,
        change_url(row),
        reverse("admin:playground_credential_history", args=[row.pk]),
        reverse("admin:admin_logentry_changelist"),
    ]
    bodies = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        bodies.append(response.content.decode())
    return bodies


def assert_nowhere(secret: str, row: Credential, client: Client) -> None:
    for body in pages_of(client, row):
        assert secret not in body
        assert row.ciphertext not in body
        assert row.ciphertext[:24] not in body
    for entry in LogEntry.objects.all():
        assert secret not in entry.change_message + entry.object_repr


# ------------------------------------------------------------------------------ adding


def test_an_admin_adds_an_organisation_key_sealed_with_what_was_typed(
    admin_client: Client, admin_user: Any
) -> None:
    response = admin_client.post(ADD, key_form(part_api_key=SECRET, part_project="proj_7"))

    assert response.status_code == 302
    # An error report of this request would show the secret fields as stars.
    assert {"part_api_key", "part_project"} <= set(response.wsgi_request.sensitive_post_parameters)
    row = Credential.objects.get()
    assert (row.scope, row.team, row.user, row.provider) == (Scope.ORG, None, None, "openai")
    assert row.base_url == OPENAI  # empty: where the catalog reaches OpenAI
    assert row.added_by == admin_user
    assert row.hint == "…b2c3"
    assert vault.open_sealed(row.ciphertext, row.binding) == {
        "api_key": SECRET,
        "project": "proj_7",
    }
    entry = LogEntry.objects.get()
    assert entry.is_addition() and entry.user == admin_user
    assert_nowhere(SECRET, row, admin_client)


def test_a_team_key_names_its_team_and_every_part_its_provider_requires(
    admin_client: Client, team: Team
) -> None:
    form = key_form(
        scope="team",
        team=str(team.pk),
        provider="spark",
        label="spark",
        part_api_key="spark-key-0123456789",
        part_app_id="app42",
    )

    missing = admin_client.post(ADD, form)
    assert missing.status_code == 200
    assert "Enter the APISecret." in text(missing)
    assert "spark-key-0123456789" not in missing.content.decode()  # never filled back in
    assert not Credential.objects.exists()

    no_team = admin_client.post(ADD, {**form, "team": "", "part_api_secret": "s3cr3t-value"})
    assert "Choose the team this key belongs to." in text(no_team)
    assert not Credential.objects.exists()

    saved = admin_client.post(ADD, {**form, "part_api_secret": "s3cr3t-value"})
    assert saved.status_code == 302
    row = Credential.objects.get()
    assert (row.scope, row.team, row.base_url) == (Scope.TEAM, team, "wss://spark-api.xf-yun.com")
    assert vault.open_sealed(row.ciphertext, row.binding) == {
        "api_key": "spark-key-0123456789",
        "app_id": "app42",
        "api_secret": "s3cr3t-value",
    }


def test_adding_refuses_a_missing_key_a_part_of_another_provider_and_a_team_for_the_org(
    admin_client: Client, team: Team
) -> None:
    no_key = admin_client.post(ADD, key_form())
    assert "Enter the API key." in text(no_key)

    stray = admin_client.post(ADD, key_form(part_api_key=SECRET, part_region="cn-beijing"))
    assert "OpenAI does not use this: leave it empty." in text(stray)

    org_with_team = admin_client.post(ADD, key_form(part_api_key=SECRET, team=str(team.pk)))
    assert "An organisation key belongs to no team: clear the team." in text(org_with_team)

    spaced = admin_client.post(ADD, key_form(part_api_key="sk-two words-0123456789"))
    assert "API key cannot contain spaces or line breaks." in text(spaced)

    for response in (no_key, stray, org_with_team, spaced):
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
    assert not Credential.objects.exists()
    assert not LogEntry.objects.exists()


# ------------------------------------------------------------------------------ changing


def test_a_change_without_the_secret_keeps_the_saved_key(admin_client: Client) -> None:
    row = saved_key()
    before = row.ciphertext

    page = admin_client.get(change_url(row))
    assert 'name="part_api_key"' in page.content.decode()
    assert "…b2c3" in page.content.decode()

    response = admin_client.post(
        change_url(row), key_form(label="shared, renamed", base_url=OPENAI + "/")
    )

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.label == "shared, renamed"
    assert row.ciphertext == before
    assert vault.open_sealed(row.ciphertext, row.binding) == {"api_key": SECRET}
    assert LogEntry.objects.get().get_change_message() == "Changed Label."


def test_entering_the_secret_again_replaces_it_and_history_names_the_field_only(
    admin_client: Client,
) -> None:
    row = saved_key()

    response = admin_client.post(change_url(row), key_form(part_api_key=OTHER_SECRET))

    assert response.status_code == 302
    row.refresh_from_db()
    assert vault.open_sealed(row.ciphertext, row.binding) == {"api_key": OTHER_SECRET}
    assert row.hint == "…u7i8"
    entry = LogEntry.objects.get()
    assert entry.get_change_message() == "Changed API key."
    assert_nowhere(OTHER_SECRET, row, admin_client)
    assert_nowhere(SECRET, row, admin_client)


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://gateway.example.com/v1"},
        {"provider": "deepseek"},
        {"scope": "team"},
    ],
    ids=["base_url", "provider", "owner"],
)
def test_moving_a_key_without_entering_it_again_is_refused(
    admin_client: Client, team: Team, change: dict[str, str]
) -> None:
    row = saved_key()
    before = (row.ciphertext, row.base_url, row.provider, row.scope)
    if change.get("scope") == "team":
        change = {**change, "team": str(team.pk)}

    refused = admin_client.post(change_url(row), key_form(**change))

    assert refused.status_code == 200
    assert KEY_AGAIN in text(refused)
    row.refresh_from_db()
    assert (row.ciphertext, row.base_url, row.provider, row.scope) == before
    assert not LogEntry.objects.exists()

    moved = admin_client.post(change_url(row), key_form(**change, part_api_key=OTHER_SECRET))
    assert moved.status_code == 302
    row.refresh_from_db()
    assert vault.open_sealed(row.ciphertext, row.binding) == {"api_key": OTHER_SECRET}


def test_a_server_no_catalog_model_uses_is_saved_with_a_warning(admin_client: Client) -> None:
    response = admin_client.post(
        ADD,
        key_form(part_api_key=SECRET, base_url="https://gateway.example.com/v1"),
        follow=True,
    )

    assert Credential.objects.get().base_url == "https://gateway.example.com/v1"
    assert (
        "No catalog model of openai is reached at https://gateway.example.com/v1, so this key "
        "will not be used until one is."
    ) in text(response)


# ------------------------------------------------------------------------------ personal keys


def test_a_personal_key_is_metadata_only(admin_client: Client, owner: Any) -> None:
    row = saved_key(label="alice's own", scope=Scope.USER, user=owner)

    listed = text(admin_client.get(LIST))
    assert "alice's own" in listed and "Personal: alice" in listed

    page = admin_client.get(change_url(row))
    body = page.content.decode()
    assert page.status_code == 200
    assert "…b2c3" in body and "Personal: alice" in html.unescape(body)
    assert 'name="part_api_key"' not in body and 'name="label"' not in body
    assert_nowhere(SECRET, row, admin_client)

    refused = admin_client.post(change_url(row), key_form(part_api_key=OTHER_SECRET))
    assert refused.status_code == 403
    delete = reverse("admin:playground_credential_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert (row.label, row.scope) == ("alice's own", Scope.USER)
    assert vault.open_sealed(row.ciphertext, row.binding) == {"api_key": SECRET}


# ------------------------------------------------------------------------------ actions


def act(client: Client, action: str, *rows: Credential) -> str:
    response = client.post(
        LIST, {"action": action, "_selected_action": [r.pk for r in rows]}, follow=True
    )
    assert response.status_code == 200
    return text(response)


def test_disable_and_enable_change_shared_keys_only_and_are_recorded(
    admin_client: Client, owner: Any
) -> None:
    shared = saved_key()
    own = saved_key(label="alice's own", scope=Scope.USER, user=owner)

    said = act(admin_client, "disable", shared, own)

    assert "Disabled 1 key(s)." in said
    assert "1 personal key(s) left alone: a person's own keys are theirs to change." in said
    shared.refresh_from_db()
    own.refresh_from_db()
    assert (shared.enabled, own.enabled) == (False, True)
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.get_change_message()) == (str(shared.pk), "Changed Enabled.")

    assert "Enabled 1 key(s)." in act(admin_client, "enable", shared)
    shared.refresh_from_db()
    assert shared.enabled


def test_test_connection_asks_a_worker_with_the_id_only_and_shows_its_sentence(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker is stood in for: it records a pass on the row, as the real one does, and
    answers; the admin shows its sentence for the row."""
    from django.utils import timezone

    from playground.redis_sync import redis_client
    from playground.tasks import check_credential

    asked: list[tuple[Any, ...]] = []

    def worker(credential_id: int, reply_to: str) -> None:
        asked.append((credential_id, reply_to))
        Credential.objects.filter(pk=credential_id).update(
            test_passed=True, tested_at=timezone.now(), test_message="connected"
        )
        redis_client().rpush(reply_to, "OpenAI · GPT-5: connected; the model answered in 0.2 s.")

    monkeypatch.setattr(check_credential, "delay", worker)
    row = saved_key()

    said = act(admin_client, "test_connection", row)

    assert "Shared (Organisation): OpenAI · GPT-5: connected; the model answered in 0.2 s." in said
    [(credential_id, reply_to)] = asked
    assert credential_id == row.pk and reply_to.startswith("pg:conn:")
    assert SECRET not in repr(asked)
    assert "passed (" in text(admin_client.get(LIST))


def test_test_connection_waits_a_few_seconds_then_leaves_the_result_to_the_row(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker answers (here, none runs): the action gives the tests a few seconds in
    all, not one wait per key, then says they are still running (the row records the
    result when one comes). The wait is made short for the test; the bound asserted is
    generous (3 s against 0.3 s)."""
    import time

    from playground.tasks import check_credential

    monkeypatch.setattr(check_credential, "delay", lambda *args: None)
    monkeypatch.setattr(credential_admin, "WAIT_S", 0.3)
    rows = [saved_key(label=f"shared {n}") for n in range(3)]

    started = time.monotonic()
    said = act(admin_client, "test_connection", *rows)

    assert time.monotonic() - started < 3  # 0.3 s in all, not 0.3 s per key
    assert "Shared 1 (Organisation): still testing after 0 s; its Last test shows" in said
    assert 'class="warning"' in said
    for row in rows:
        row.refresh_from_db()
        assert row.tested_at is None


# ------------------------------------------------------------------------------ who may


def test_people_who_are_not_staff_are_sent_to_the_admin_login(
    outsider_client: Client, owner: Any
) -> None:
    row = saved_key(label="alice's own", scope=Scope.USER, user=owner)
    for url in (LIST, ADD, change_url(row)):
        response = outsider_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert outsider_client.post(ADD, key_form(part_api_key=SECRET)).status_code == 302
    assert Credential.objects.count() == 1


def test_the_add_page_says_which_provider_uses_each_field(admin_client: Client) -> None:
    page = text(admin_client.get(ADD))

    assert "Used by: iFlytek Spark, its “APISecret”." in page
    assert (
        "Used by: Baidu Qianfan (qianfan_v1), its “Secret Key (SK)”; Tencent Hunyuan "
        "(hunyuan), its “SecretKey”."
    ) in page
    assert '<option value="qianfan_v1">Baidu Qianfan (qianfan_v1)</option>' in page
    assert 'name="part_api_secret" autocomplete="new-password"' in page
