"""Settings come from the environment; a wrong value stops start-up with a sentence that
says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from playground import settings as pg_settings
from playground.settings import database_from_url, env_bool, env_number, env_url

# ---------------------------------------------------------------- DATABASE_URL


def test_sqlite_relative_path_is_under_the_project() -> None:
    config = database_from_url("sqlite:///var/data/play.sqlite3")

    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(pg_settings.BASE_DIR / "var/data/play.sqlite3")
    assert config["TEST"] == {"NAME": str(pg_settings.BASE_DIR / "var/data/play.test.sqlite3")}


def test_sqlite_absolute_path() -> None:
    config = database_from_url("sqlite:////srv/playground/db.sqlite3")

    assert config["NAME"] == "/srv/playground/db.sqlite3"
    assert config["TEST"] == {"NAME": "/srv/playground/db.test.sqlite3"}
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"  # type: ignore[index]


def test_sqlite_with_an_escaped_path() -> None:
    assert database_from_url("sqlite:////tmp/my%20db.sqlite3")["NAME"] == "/tmp/my db.sqlite3"


def test_sqlite_without_a_path_is_refused() -> None:
    with pytest.raises(
        ImproperlyConfigured, match=r"^DATABASE_URL sqlite:/// needs a file path\.$"
    ):
        database_from_url("sqlite:///")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_url(scheme: str) -> None:
    config = database_from_url(
        f"{scheme}://play%40er:p%40ss%3Aword@db.example:6543/pg_name?sslmode=require"
        "&connect_timeout=5"
    )

    assert config == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "pg_name",
        "USER": "play@er",
        "PASSWORD": "p@ss:word",
        "HOST": "db.example",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require", "connect_timeout": "5"},
        "CONN_MAX_AGE": 0,
    }


def test_postgres_url_defaults() -> None:
    config = database_from_url("postgres://db.example")

    assert (config["NAME"], config["USER"], config["PASSWORD"], config["PORT"]) == (
        "playground",
        "",
        "",
        "",
    )
    assert config["HOST"] == "db.example"


def test_an_unknown_database_scheme_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        database_from_url("mysql://root@localhost/playground")

    assert str(caught.value) == (
        "DATABASE_URL must start with sqlite:/// or postgres://; got a URL with scheme 'mysql'."
    )


# ---------------------------------------------------------------- the env_* helpers


def test_a_bad_redis_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "localhost:6379")

    with pytest.raises(ImproperlyConfigured) as caught:
        env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))

    assert str(caught.value) == (
        "REDIS_URL must be a URL starting with redis:// or rediss:// or unix://; "
        "got 'localhost:6379'."
    )


def test_a_good_redis_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", " redis://cache:6380/2 ")

    assert env_url("REDIS_URL", "redis://x", ("redis", "rediss")) == "redis://cache:6380/2"


def test_http_urls_lose_their_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_LOCAL_MODEL_URL", "http://127.0.0.1:9000/v1/")

    assert env_url("PLAYGROUND_LOCAL_MODEL_URL", "", ("http", "https")) == (
        "http://127.0.0.1:9000/v1"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("fast", "PLAYGROUND_FLUSH_MS must be a number, not 'fast'."),
        ("40ms", "PLAYGROUND_FLUSH_MS must be a number, not '40ms'."),
        ("1", "PLAYGROUND_FLUSH_MS must be between 5 and 1000."),
        ("5000", "PLAYGROUND_FLUSH_MS must be between 5 and 1000."),
        ("nan", "PLAYGROUND_FLUSH_MS must be between 5 and 1000."),
        ("inf", "PLAYGROUND_FLUSH_MS must be between 5 and 1000."),
    ],
)
def test_a_bad_number_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str, message: str) -> None:
    monkeypatch.setenv("PLAYGROUND_FLUSH_MS", raw)

    with pytest.raises(ImproperlyConfigured) as caught:
        env_number("PLAYGROUND_FLUSH_MS", 40, 5, 1000)

    assert str(caught.value) == message


def test_numbers_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_FLUSH_MS", " 25 ")
    assert env_number("PLAYGROUND_FLUSH_MS", 40, 5, 1000) == 25
    monkeypatch.setenv("PLAYGROUND_FLUSH_MS", "")
    assert env_number("PLAYGROUND_FLUSH_MS", 40, 5, 1000) == 40
    monkeypatch.delenv("PLAYGROUND_FLUSH_MS")
    assert env_number("PLAYGROUND_FLUSH_MS", 40, 5, 1000) == 40


def test_booleans(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, value in [("yes", True), ("ON", True), ("0", False), ("off", False)]:
        monkeypatch.setenv("DEBUG", raw)
        assert env_bool("DEBUG", not value) is value
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG must be true or false, not 'maybe'\.$"):
        env_bool("DEBUG", True)


# ---------------------------------------------------------------- start-up


VAULT_KEY = "dGVzdCB2YXVsdCBrZXksIG5vdCBhIHNlY3JldC4uLi4="


def start_django(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "playground.settings",
        "SECRET_KEY": "k" * 40,  # so that start-up does not write var/secret_key
        "PLAYGROUND_VAULT_KEY": VAULT_KEY,  # which a SECRET_KEY set asks for
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=str(pg_settings.BASE_DIR),
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_up_stops_on_a_mysql_database_url() -> None:
    result = start_django(DATABASE_URL="mysql://x")

    assert result.returncode != 0
    assert "started" not in result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        "django.core.exceptions.ImproperlyConfigured: DATABASE_URL must be a URL starting with "
        "sqlite:// or postgres:// or postgresql://; got 'mysql://x'."
    )


def test_start_up_stops_on_a_bad_flush_window() -> None:
    result = start_django(PLAYGROUND_FLUSH_MS="soon")

    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("ImproperlyConfigured: PLAYGROUND_FLUSH_MS must be a number, not 'soon'.")
    )


def test_start_up_succeeds_with_good_settings() -> None:
    result = start_django(DATABASE_URL="sqlite:////tmp/playground-settings-test.sqlite3")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


@pytest.mark.parametrize(
    ("url", "ssl"),
    [
        ("redis://cache:6380/2", "False"),
        ("rediss://cache:6380/2", "{'ssl_cert_reqs': <VerifyMode.CERT_REQUIRED: 2>}"),
    ],
)
def test_the_broker_is_the_fixed_redis_transport_and_rediss_verifies_the_server(
    url: str, ssl: str
) -> None:
    """Celery reaches Redis through playground/broker.py's transport; naming it loses
    kombu's reading of the rediss:// scheme, so settings ask for a verified certificate
    (kombu alone would not verify it)."""
    show = (
        "import django; django.setup(); from playground.celery import app; "
        "c = app.connection_for_write(); print(type(c.transport).__module__, c.ssl)"
    )
    result = subprocess.run(
        [sys.executable, "-c", show],
        cwd=str(pg_settings.BASE_DIR),
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings", "REDIS_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split(None, 1) == ["playground.broker", ssl + "\n"]


# ---------------------------------------------------------------- provider keys


def test_provider_keys_are_the_set_variables_the_adapters_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read once at start-up, in settings only: each adapter's key variable and its other
    credential parts, when set; nothing else from the environment."""
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_SECRET", "_SECRET_KEY", "_APP_ID", "_PASSWORD")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("SPARK_APP_ID", "app-7")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    monkeypatch.setenv("SOMETHING_API_KEY", "not an adapter's")

    keys = pg_settings.env_provider_keys()

    assert keys == {"OPENAI_API_KEY": "sk-from-the-environment", "SPARK_APP_ID": "app-7"}


def test_a_catalog_model_s_credentials_come_from_the_settings(settings: object) -> None:
    from playground.catalog import CatalogModel

    settings.PLAYGROUND_PROVIDER_KEYS = {  # type: ignore[attr-defined]
        "SPARK_API_KEY": "k",
        "SPARK_API_SECRET": "s",
    }
    spark = CatalogModel("spark:lite", "Spark Lite", "spark", "lite")

    assert spark.missing_env == ["SPARK_APP_ID"]
    assert spark.credentials().api_key == "k"
    assert dict(spark.credentials().extra) == {"app_id": "", "api_secret": "s"}
