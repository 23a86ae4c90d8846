"""The vault keeps keys encrypted at rest: a round trip gives the key back, rotation keeps
old keys readable and moves them to the new vault key, and a token under a vault key the
server no longer has is refused with a sentence (never decrypted to garbage)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from playground import vault
from playground.models import CustomEndpoint
from playground.settings import env_fernet_keys, env_hosts
from tests.playground.test_settings import start_django

SECRET = "sk-or-v1-0123456789abcdefa1b2"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_key_comes_back_as_it_was_and_is_not_in_its_token(settings: Any) -> None:
    settings.PLAYGROUND_VAULT_KEYS = [NEW]
    token = vault.encrypt(SECRET)

    assert vault.decrypt(token) == SECRET
    assert SECRET not in token and SECRET[-8:] not in token
    assert vault.encrypt(SECRET) != token  # a fresh IV each time
    assert Fernet(NEW.encode()).decrypt(token.encode()).decode() == SECRET


def test_without_a_vault_key_the_key_is_derived_from_secret_key(settings: Any) -> None:
    settings.PLAYGROUND_VAULT_KEYS = []
    settings.SECRET_KEY = "s" * 50
    token = vault.encrypt(SECRET)

    derived = vault.derived_key("s" * 50)
    assert Fernet(derived).decrypt(token.encode()).decode() == SECRET
    assert derived == vault.derived_key("s" * 50) != vault.derived_key("t" * 50)

    settings.SECRET_KEY = "t" * 50
    with pytest.raises(vault.VaultError, match="enter the key again"):
        vault.decrypt(token)


def test_a_token_under_a_vault_key_the_server_no_longer_has_is_refused_clearly(
    settings: Any,
) -> None:
    settings.PLAYGROUND_VAULT_KEYS = [OLD]
    token = vault.encrypt(SECRET)
    settings.PLAYGROUND_VAULT_KEYS = [NEW]

    with pytest.raises(vault.VaultError) as refused:
        vault.decrypt(token)
    assert str(refused.value) == (
        "The saved key cannot be read with this server's vault keys (was PLAYGROUND_VAULT_KEY "
        "or SECRET_KEY changed?); enter the key again."
    )
    with pytest.raises(vault.VaultError):
        vault.decrypt(token[:-4] + "AAAA")  # altered


def test_rotation_the_first_key_encrypts_and_every_key_decrypts(settings: Any) -> None:
    settings.PLAYGROUND_VAULT_KEYS = [OLD]
    old_token = vault.encrypt(SECRET)
    settings.PLAYGROUND_VAULT_KEYS = [NEW, OLD]

    assert vault.decrypt(old_token) == SECRET
    new_token = vault.encrypt(SECRET)
    rotated = vault.rotate(old_token)

    settings.PLAYGROUND_VAULT_KEYS = [NEW]  # the old vault key dropped
    assert vault.decrypt(new_token) == SECRET
    assert vault.decrypt(rotated) == SECRET
    with pytest.raises(vault.VaultError):
        vault.decrypt(old_token)


def test_keys_saved_before_a_vault_key_was_set_stay_readable(settings: Any) -> None:
    settings.PLAYGROUND_VAULT_KEYS = []
    before = vault.encrypt(SECRET)
    settings.PLAYGROUND_VAULT_KEYS = [NEW]

    assert vault.decrypt(before) == SECRET


@pytest.mark.django_db
def test_the_rotate_command_moves_every_saved_key_to_the_first_vault_key(
    settings: Any, owner: Any
) -> None:
    settings.PLAYGROUND_VAULT_KEYS = [OLD]
    endpoint = CustomEndpoint.objects.create(
        owner=owner,
        name="gateway",
        base_url="https://gateway.example.com/v1",
        key_ciphertext=vault.encrypt(SECRET),
        key_hint=vault.hint(SECRET),
        model_ids=["m"],
    )
    settings.PLAYGROUND_VAULT_KEYS = [NEW, OLD]
    out = io.StringIO()

    call_command("rotate_vault_keys", stdout=out)

    assert out.getvalue() == "Encrypted 1 saved key(s) again under the first vault key.\n"
    endpoint.refresh_from_db()
    settings.PLAYGROUND_VAULT_KEYS = [NEW]
    assert vault.decrypt(endpoint.key_ciphertext) == SECRET


@pytest.mark.django_db
def test_the_rotate_command_names_keys_it_cannot_read(settings: Any, owner: Any) -> None:
    settings.PLAYGROUND_VAULT_KEYS = [OLD]
    endpoint = CustomEndpoint.objects.create(
        owner=owner, name="lost", base_url="https://x.example.com", model_ids=["m"]
    )
    CustomEndpoint.objects.filter(pk=endpoint.pk).update(key_ciphertext=vault.encrypt(SECRET))
    settings.PLAYGROUND_VAULT_KEYS = [NEW]

    with pytest.raises(CommandError, match=rf"endpoint ids {endpoint.pk}\)"):
        call_command("rotate_vault_keys", stdout=io.StringIO())


def test_the_hint_shows_the_last_four_characters_of_a_long_key_only() -> None:
    assert vault.hint(SECRET) == "…a1b2"
    assert vault.hint("short-key") == "…"


# ---------------------------------------------------------------- settings


def test_vault_keys_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_VAULT_KEY", f" {NEW} ,{OLD}")
    assert env_fernet_keys("PLAYGROUND_VAULT_KEY") == [NEW, OLD]
    monkeypatch.setenv("PLAYGROUND_VAULT_KEY", "")
    assert env_fernet_keys("PLAYGROUND_VAULT_KEY") == []
    monkeypatch.setenv("PLAYGROUND_VAULT_KEY", f"{NEW},not-a-key-at-all")
    with pytest.raises(ImproperlyConfigured, match="key 2 of 2 is not one") as refused:
        env_fernet_keys("PLAYGROUND_VAULT_KEY")
    assert "not-a-key-at-all" not in str(refused.value)


def test_allowed_private_hosts_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_ALLOWED_PRIVATE_HOSTS", " Ollama.Internal., 10.0.0.7,[::1] ,")
    assert env_hosts("PLAYGROUND_ALLOWED_PRIVATE_HOSTS") == ["ollama.internal", "10.0.0.7", "::1"]
    monkeypatch.setenv("PLAYGROUND_ALLOWED_PRIVATE_HOSTS", "http://ollama.internal:11434/")
    with pytest.raises(ImproperlyConfigured, match="no scheme, no path"):
        env_hosts("PLAYGROUND_ALLOWED_PRIVATE_HOSTS")


def test_start_up_stops_on_a_malformed_vault_key_without_repeating_it() -> None:
    result = start_django(PLAYGROUND_VAULT_KEY="hunter2-is-not-a-fernet-key")

    assert result.returncode != 0
    assert "started" not in result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "django.core.exceptions.ImproperlyConfigured: PLAYGROUND_VAULT_KEY must be one or more "
        "Fernet keys separated by commas"
    )
    assert "hunter2" not in result.stderr


def test_start_up_succeeds_with_two_vault_keys() -> None:
    result = start_django(PLAYGROUND_VAULT_KEY=f"{NEW},{OLD}")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"
