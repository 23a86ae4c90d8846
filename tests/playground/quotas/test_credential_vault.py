"""A credential's parts are sealed in the vault bound to their row: they open for that
row only, not when copied into another, nor when its owner, provider or server is changed
behind the playground's back; and they survive a rotation of the vault's keys."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from playground import vault
from playground.credentials import seal_parts
from playground.models import Credential, Team

pytestmark = pytest.mark.django_db
PARTS = {"api_key": "AKIDexample0123456789", "secret_key": "s3cr3t-value-abcdef"}


def saved(**row: Any) -> Credential:
    defaults: dict[str, Any] = {
        "provider": "hunyuan",
        "label": "research",
        "scope": "org",
        "base_url": "https://hunyuan.tencentcloudapi.com",
    }
    credential = Credential(**{**defaults, **row})
    seal_parts(credential, PARTS)
    credential.save()
    return credential


def test_round_trip_and_nothing_readable_at_rest() -> None:
    row = Credential.objects.get(pk=saved().pk)
    assert vault.open_sealed(row.ciphertext, row.binding) == PARTS
    assert row.hint == "…6789"
    for secret in PARTS.values():
        assert secret not in row.ciphertext
    # Not deterministic: the same parts sealed twice differ.
    assert saved().ciphertext != row.ciphertext


def test_a_ciphertext_copied_into_another_row_does_not_open(owner: Any) -> None:
    team = Team.objects.create(name="research")
    theirs = saved(scope="team", team=team)
    mine = saved(scope="user", user=owner, label="mine")
    Credential.objects.filter(pk=mine.pk).update(ciphertext=theirs.ciphertext)
    mine.refresh_from_db()
    with pytest.raises(vault.VaultError, match="belongs to another credential"):
        vault.open_sealed(mine.ciphertext, mine.binding)


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://attacker.example"},
        {"provider": "qianfan_v1"},
        {"scope": "org", "user": None},
    ],
)
def test_a_row_changed_behind_the_playgrounds_back_does_not_open(
    owner: Any, change: dict[str, Any]
) -> None:
    row = saved(scope="user", user=owner)
    Credential.objects.filter(pk=row.pk).update(**change)
    row.refresh_from_db()
    with pytest.raises(vault.VaultError):
        vault.open_sealed(row.ciphertext, row.binding)


def test_a_tampered_token_does_not_open() -> None:
    row = saved()
    token = row.ciphertext
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(vault.VaultError):
        vault.open_sealed(tampered, row.binding)


def test_rotation_keeps_the_binding(settings: Any) -> None:
    old = Fernet.generate_key().decode()
    settings.PLAYGROUND_VAULT_KEYS = [old]
    row = saved()
    new = Fernet.generate_key().decode()
    settings.PLAYGROUND_VAULT_KEYS = [new, old]

    call_command("rotate_vault_keys", verbosity=0)

    row.refresh_from_db()
    settings.PLAYGROUND_VAULT_KEYS = [new]
    assert vault.open_sealed(row.ciphertext, row.binding) == PARTS
