"""What a deployment gets without asking: DEBUG off, a vault key of its own (never one
derived from SECRET_KEY), cookies scripts cannot read and other sites do not send, Secure
cookies and HSTS behind TLS, and a debug page (when someone turns DEBUG on) that shows no
key, token or password: LiteLLM #31620 class (secrets in error pages)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.views.debug import technical_500_response

from tests.conftest import PASSWORD
from tests.playground.test_settings import VAULT_KEY, start_django

SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({name: getattr(s, name, None) for name in %r}))"
)


def settings_of(names: list[str], **env: str) -> dict[str, Any]:
    import subprocess

    from playground import settings as pg_settings

    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "playground.settings",
        "SECRET_KEY": "k" * 40,
        "PLAYGROUND_VAULT_KEY": VAULT_KEY,
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", SHOW % (names,)],
        cwd=str(pg_settings.BASE_DIR),
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_debug_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBUG", raising=False)

    assert settings_of(["DEBUG"]) == {"DEBUG": False}
    assert settings_of(["DEBUG"], DEBUG="true") == {"DEBUG": True}


def test_a_deployment_without_a_vault_key_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """SECRET_KEY set, DEBUG off: without PLAYGROUND_VAULT_KEY the keys people save would be
    encrypted with one derived from SECRET_KEY; start-up stops and says what to do."""
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.delenv("PLAYGROUND_VAULT_KEY", raising=False)

    result = start_django(PLAYGROUND_VAULT_KEY="")

    assert result.returncode != 0
    assert "started" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "django.core.exceptions.ImproperlyConfigured: PLAYGROUND_VAULT_KEY must be set when"
        " SECRET_KEY is and DEBUG is off"
    )
    assert "Fernet.generate_key()" in last  # how to make one
    assert "k" * 40 not in result.stderr


def test_development_with_debug_on_still_starts_without_one() -> None:
    assert start_django(PLAYGROUND_VAULT_KEY="", DEBUG="true").returncode == 0


def test_behind_tls_cookies_are_secure_and_browsers_keep_to_https() -> None:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
    ]

    assert settings_of(names, PLAYGROUND_TLS="true") == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    assert settings_of(["SECURE_SSL_REDIRECT"], PLAYGROUND_TLS="true", PLAYGROUND_TLS_REDIRECT="1")
    plain = settings_of(names, PLAYGROUND_TLS="false")
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] == 0


@pytest.mark.django_db
def test_sign_in_cookies_are_http_only_and_same_site(client: Client, owner: Any) -> None:
    client.get("/login/")
    response = client.post("/login/", {"username": owner.username, "password": PASSWORD})

    assert response.status_code == 302
    session = response.cookies["sessionid"]
    csrf = client.cookies["csrftoken"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert csrf["httponly"] and csrf["samesite"] == "Lax"
    assert not session["secure"]  # not behind TLS here


@pytest.mark.django_db
def test_behind_tls_the_sign_in_cookies_are_secure_and_hsts_is_sent(
    settings: Any, client: Client, owner: Any
) -> None:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = {"HTTP_X_FORWARDED_PROTO": "https"}

    client.get("/login/", **proxied)
    response = client.post("/login/", {"username": owner.username, "password": PASSWORD}, **proxied)

    assert response.cookies["sessionid"]["secure"]
    assert client.cookies["csrftoken"]["secure"]
    assert response["Strict-Transport-Security"] == "max-age=31536000"


# Built here, so that the debug page's source excerpts (the lines around the error) show
# their names, not their values.
PROVIDER_KEY = "sk-live-" + "0123456789abcdef"
REDIS_PASSWORD = "hunter2" + "-redis"
BEARER = "tok-" + "abcdef"


def test_litellm_31620_the_debug_page_shows_no_key_token_or_password(settings: Any) -> None:
    """With DEBUG on, an error's page lists the settings: provider keys, the vault's keys,
    SECRET_KEY and URLs with a password (Redis, the broker) are all hidden."""
    settings.DEBUG = True
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": PROVIDER_KEY}
    settings.PLAYGROUND_VAULT_KEYS = [VAULT_KEY]
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.CHANNEL_LAYERS = {"default": {"CONFIG": {"hosts": [settings.REDIS_URL]}}}
    request = RequestFactory().get("/s/1/", HTTP_AUTHORIZATION=f"Bearer {BEARER}")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        page = technical_500_response(request, *sys.exc_info()).content.decode()

    assert "boom" in page and "REDIS_URL" in page  # it is the debug page, settings listed
    for secret in (PROVIDER_KEY, VAULT_KEY, settings.SECRET_KEY, REDIS_PASSWORD, BEARER):
        assert secret not in page
