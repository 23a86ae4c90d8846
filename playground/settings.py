"""Settings, read from the environment only here. A wrong value stops start-up with a
sentence saying what to fix. Defaults are the embedded ones ``make run`` uses."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from providers.registry import PROVIDERS, provider_class

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLAYGROUND_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_number(name: str, default: float, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum:g} and {maximum:g}.")
    return value


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)};"
            f" got {value!r}."
        )
    return value.rstrip("/") if parts.scheme.startswith("http") else value


def env_hosts(name: str) -> list[str]:
    """Host names separated by commas (no scheme, no path), lower-cased."""
    hosts = []
    for raw in env_str(name, "").split(","):
        host = raw.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
        if not host:
            continue
        if "/" in host or " " in host:
            raise ImproperlyConfigured(
                f"{name} must list host names separated by commas (no scheme, no path);"
                f" got {raw.strip()!r}."
            )
        hosts.append(host)
    return hosts


def env_fernet_keys(name: str) -> list[str]:
    """Fernet keys separated by commas. The message never repeats a key: it is a secret."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return []
    keys = [k.strip() for k in raw.split(",")]
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{name} must be one or more Fernet keys separated by commas (each 32 bytes in"
                f" URL-safe base64, 44 characters); key {number} of {len(keys)} is not one."
                " Make one with: python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def env_provider_keys() -> dict[str, str]:
    """The set environment variables that hold provider credentials, by name."""
    keys = {}
    for name in PROVIDERS:
        try:
            cls = provider_class(name)
        except ImportError:  # a broken adapter fails its own panes, not the start-up
            continue
        for env in (cls.key_env, *cls.extra_credentials.values()):
            if env and os.environ.get(env):
                keys[env] = os.environ[env]
    return keys


def database_from_url(url: str) -> dict[str, object]:
    """Turn DATABASE_URL (sqlite:///path or postgres://user:pass@host:port/name) into Django's
    form."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as dj-database-url reads them.
        path = unquote(parts.path)[1:]
        if not path:
            raise ImproperlyConfigured("DATABASE_URL sqlite:/// needs a file path.")
        name = path if os.path.isabs(path) else str(BASE_DIR / path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": str(Path(name).with_suffix(".test.sqlite3"))},
            # Keep connections: closing the last one checkpoints the WAL, which was 3 of a
            # Send's 8 ms (docs/performance.md). SQLite connections are file handles, so a
            # thread that leaves one open costs nothing on a server.
            "CONN_MAX_AGE": 60,
        }
    if parts.scheme in {"postgres", "postgresql"}:
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "playground",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 0,
        }
    raise ImproperlyConfigured(
        "DATABASE_URL must start with sqlite:/// or postgres://; "
        f"got a URL with scheme {parts.scheme!r}."
    )


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Embedded default: one random key kept in var/ so sessions survive restarts.
    import secrets

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "playground",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": database_from_url(
        env_url(
            "DATABASE_URL",
            f"sqlite:///{VAR_DIR / 'playground.sqlite3'}",
            ("sqlite", "postgres", "postgresql"),
        )
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# ---------------------------------------------------------------- the playground itself

# Where the embedded local model (llama.cpp's OpenAI-compatible server) listens; empty = off.
PLAYGROUND_LOCAL_MODEL_URL = env_str("PLAYGROUND_LOCAL_MODEL_URL", "http://127.0.0.1:8081/v1")
if PLAYGROUND_LOCAL_MODEL_URL:
    PLAYGROUND_LOCAL_MODEL_URL = env_url(
        "PLAYGROUND_LOCAL_MODEL_URL", PLAYGROUND_LOCAL_MODEL_URL, ("http", "https")
    )
# llama.cpp's server decodes one request at a time.
PLAYGROUND_LOCAL_CONCURRENCY = int(env_number("PLAYGROUND_LOCAL_CONCURRENCY", 1, 1, 64))
PLAYGROUND_ENDPOINT_CONCURRENCY = int(env_number("PLAYGROUND_ENDPOINT_CONCURRENCY", 16, 1, 1024))
# Requests a web process serves at once (its kept threads, playground/asgi_handler.py).
PLAYGROUND_HTTP_THREADS = int(env_number("PLAYGROUND_HTTP_THREADS", 32, 1, 512))

# Hosts a user's own endpoint may point at although they resolve to a private or loopback
# address (playground/egress.py), e.g. "ollama.internal,10.0.0.7"; empty = public only.
PLAYGROUND_ALLOWED_PRIVATE_HOSTS = env_hosts("PLAYGROUND_ALLOWED_PRIVATE_HOSTS")
# The vault's keys (playground/vault.py): the first encrypts, all decrypt. Empty = one
# derived from SECRET_KEY.
PLAYGROUND_VAULT_KEYS = env_fernet_keys("PLAYGROUND_VAULT_KEY")

# Base URL overrides per provider: PLAYGROUND_<NAME>_BASE_URL (gateways, proxies, local servers).
PLAYGROUND_BASE_URLS = {
    name: env_url(f"PLAYGROUND_{name.upper()}_BASE_URL", "http://x", ("http", "https", "ws", "wss"))
    for name in PROVIDERS
    if os.environ.get(f"PLAYGROUND_{name.upper()}_BASE_URL")
}

# The catalog's provider credentials (site keys), by the environment variable each adapter
# names (Provider.key_env and extra_credentials, e.g. OPENAI_API_KEY): read here once, the
# only place they are read; the worker alone puts them into a call (CatalogModel.credentials).
PLAYGROUND_PROVIDER_KEYS = env_provider_keys()

# Streaming: coalescing window (ms) at rest, and the most it may widen to under load.
PLAYGROUND_FLUSH_MS = env_number("PLAYGROUND_FLUSH_MS", 40, 5, 1000)
PLAYGROUND_FLUSH_MAX_MS = env_number("PLAYGROUND_FLUSH_MAX_MS", 100, 5, 5000)
# How long a response's log stays in Redis after the answer ends (seconds).
PLAYGROUND_LOG_TTL = int(env_number("PLAYGROUND_LOG_TTL", 24 * 3600, 60, 30 * 24 * 3600))
# Limits on what a person can send.
PLAYGROUND_MAX_PANES = 8
# Fair use, with no admin action (a quota's own numbers take precedence): turns one person
# may have answering at once, Sends per minute per person, and the longest one answer may
# stream before the worker stops it. 0 turns a limit off.
PLAYGROUND_FAIR_CONCURRENT_TURNS = int(env_number("PLAYGROUND_FAIR_CONCURRENT_TURNS", 4, 0, 1000))
PLAYGROUND_FAIR_SENDS_PER_MINUTE = int(
    env_number("PLAYGROUND_FAIR_SENDS_PER_MINUTE", 30, 0, 100_000)
)
PLAYGROUND_PANE_MAX_SECONDS = int(env_number("PLAYGROUND_PANE_MAX_SECONDS", 900, 0, 86_400))
# The most of an endpoint's slots (its concurrency) one person's panes may hold at once, as a
# fraction (rounded up, at least one): the rest are kept for other people's panes, which
# then start at once however many one person sends. 1 lets one person take them all.
PLAYGROUND_FAIR_ENDPOINT_SHARE = env_number("PLAYGROUND_FAIR_ENDPOINT_SHARE", 0.5, 0.01, 1)
# Live sockets (session and share-link pages) one person may have open at once, across
# every web process; one more is closed with a sentence. 0 turns the limit off.
PLAYGROUND_SOCKETS_PER_PERSON = int(env_number("PLAYGROUND_SOCKETS_PER_PERSON", 20, 0, 10_000))
# The longest answer assumed for a model with no Max tokens and no known limit, when a
# quota reserves its worst case (and then sent as its Max tokens).
PLAYGROUND_ANSWER_TOKENS = int(env_number("PLAYGROUND_ANSWER_TOKENS", 4096, 1, 1_000_000))
# How long a deleted session can be brought back ("Deleted '…'. Undo"); then it is purged.
PLAYGROUND_UNDO_SECONDS = int(env_number("PLAYGROUND_UNDO_SECONDS", 10, 1, 3600))
PLAYGROUND_MAX_PROMPT_CHARS = int(env_number("PLAYGROUND_MAX_PROMPT_CHARS", 100_000, 1, 2_000_000))
# Share links (playground/share_links.py): tokens that open nothing, tried from one client
# address, and by one signed-in person, in a minute before every try is refused (429) for
# the rest of it. 0 turns a limit off.
PLAYGROUND_SHARE_TRIES_PER_IP = int(env_number("PLAYGROUND_SHARE_TRIES_PER_IP", 20, 0, 100_000))
PLAYGROUND_SHARE_TRIES_PER_USER = int(env_number("PLAYGROUND_SHARE_TRIES_PER_USER", 20, 0, 100_000))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
