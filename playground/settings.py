"""Settings, read from the environment only here. A wrong value stops start-up with a
sentence saying what to fix. Defaults are the embedded ones ``make run`` uses."""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from playground.attachments import MAX_IMAGE_BYTES, MAX_IMAGES, MAX_TOOLS_CHARS
from playground.media_limits import (
    MAX_AUDIO_BYTES,
    MAX_AUDIOS,
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    MAX_VIDEO_BYTES,
    MAX_VIDEOS,
)
from playground.secret_files import kept_secret
from providers.base import ReadLimits
from providers.registry import PROVIDERS, provider_class

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLAYGROUND_VAR_DIR", BASE_DIR / "var"))
# Videos and recordings uploaded with turns (playground.media), served only through the
# session's access check.
PLAYGROUND_MEDIA_DIR = Path(os.environ.get("PLAYGROUND_MEDIA_DIR", VAR_DIR / "media"))


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


def _secret_key() -> tuple[str, bool]:
    """Django's secret and whether it came from the environment. Unset, it is make run's
    way: one random key kept in var/secret_key (0600) so that sign-ins survive restarts."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return key, True
    return kept_secret(VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50)), False


def _vault_keys(secret_key_set: bool) -> list[str]:
    """The vault's keys (playground/vault.py): PLAYGROUND_VAULT_KEY, else, where the secret
    key is make run's own (var/), one kept beside it in var/vault_key (0600). A deployment
    (SECRET_KEY set) must set it: the key derived from SECRET_KEY, which encrypts only with
    DEBUG on, would give every saved API key away to whoever learns SECRET_KEY."""
    keys = env_fernet_keys("PLAYGROUND_VAULT_KEY")
    if keys:
        return keys
    if not secret_key_set:
        key = kept_secret(VAR_DIR / "vault_key", lambda: Fernet.generate_key().decode())
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{VAR_DIR / 'vault_key'} does not hold a Fernet key; put back the one it held"
                " (or set PLAYGROUND_VAULT_KEY)."
            ) from None
        return [key]
    if DEBUG:
        return []
    raise ImproperlyConfigured(
        "PLAYGROUND_VAULT_KEY must be set when SECRET_KEY is and DEBUG is off: it encrypts"
        " the API keys people save, apart from SECRET_KEY. Make one with: python -c 'from"
        " cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' and keep"
        " it (keys saved under another one cannot be read)."
    )


# Off unless asked for: the debug page shows code and settings to whoever gets an error.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY, _SECRET_KEY_SET = _secret_key()
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
    "playground.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A view that meets the database away answers 503 with a sentence (also handler500).
    "playground.database_away.DatabaseAwayMiddleware",
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
                "playground.csp.csp_nonce",
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
# kombu's Redis transport with the fix that lets a worker ride out a Redis restart
# (playground/broker.py). Named explicitly, a transport no longer comes from the URL's
# scheme, so rediss:// is told here to verify the server's certificate, as redis-py does
# for the other clients (kombu alone would default to not verifying it).
CELERY_BROKER_TRANSPORT = "playground.broker:Transport"
if REDIS_URL.startswith("rediss://"):
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
# A worker that lost Redis keeps its running tasks: their panes go on streaming and write
# to Redis again once it is back (Celery 6 is to cancel them by default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
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

# Cookies: never readable by scripts (the page sends its CSRF token from <body
# hx-headers>), never sent on another site's requests.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a proxy that terminates TLS (docker-compose.yml): cookies only over HTTPS, and
# browsers told to use nothing else (HSTS) for PLAYGROUND_HSTS_SECONDS. The proxy must set
# X-Forwarded-Proto (and drop a client's own), which tells Django a request came by HTTPS.
PLAYGROUND_TLS = env_bool("PLAYGROUND_TLS", False)
if PLAYGROUND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(env_number("PLAYGROUND_HSTS_SECONDS", 31_536_000, 0, 63_072_000))
    SECURE_SSL_REDIRECT = env_bool("PLAYGROUND_TLS_REDIRECT", False)
# What the debug page (DEBUG on) shows of settings and requests: also no URL that holds a
# password (REDIS_URL, the broker's, the channel layer's).
DEFAULT_EXCEPTION_REPORTER_FILTER = "playground.error_reports.SecretsFilter"

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
# The longest a worker spends on one Test connection before it answers "no answer within";
# the page waits 10 s more for it (playground/connection_tests.py).
PLAYGROUND_TEST_CONNECTION_SECONDS = int(
    env_number("PLAYGROUND_TEST_CONNECTION_SECONDS", 20, 1, 300)
)

# Hosts a user's own endpoint may point at although they resolve to a private or loopback
# address (playground/egress.py), e.g. "ollama.internal,10.0.0.7"; empty = public only.
PLAYGROUND_ALLOWED_PRIVATE_HOSTS = env_hosts("PLAYGROUND_ALLOWED_PRIVATE_HOSTS")
# Hosts a catalog entry may point at and still be sent the site environment's provider
# keys (PLAYGROUND_PROVIDER_KEYS), besides each provider's own default base URL and its
# PLAYGROUND_<NAME>_BASE_URL: a catalog entry pointed anywhere else gets no site key
# (catalog.site_key_may_go_to), whoever edited it. E.g. "gateway.internal".
PLAYGROUND_SITE_KEY_HOSTS = env_hosts("PLAYGROUND_SITE_KEY_HOSTS")
# Hosts a catalog entry typed in admin may point at although they resolve to a private or
# loopback address (the local model's and the providers' defaults always may).
PLAYGROUND_CATALOG_PRIVATE_HOSTS = env_hosts("PLAYGROUND_CATALOG_PRIVATE_HOSTS")
# The vault's keys (playground/vault.py): the first encrypts, all decrypt (and so does one
# derived from SECRET_KEY, which encrypts only in development: DEBUG on, none set).
PLAYGROUND_VAULT_KEYS = _vault_keys(_SECRET_KEY_SET)

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
# The longest answer counts from its call: a pane that waits first (its endpoint's slot, its
# key's rate limit) may wait up to PLAYGROUND_PANE_WAIT_SECONDS, then it is ended with a
# sentence, nothing asked and nothing counted.
PLAYGROUND_PANE_MAX_SECONDS = int(env_number("PLAYGROUND_PANE_MAX_SECONDS", 900, 0, 86_400))
PLAYGROUND_PANE_WAIT_SECONDS = int(env_number("PLAYGROUND_PANE_WAIT_SECONDS", 1800, 0, 86_400))
# What one answer may make the worker hold or wait for, whatever its server sends
# (providers.base.ReadLimits): an error body's KB read for its message, one line of a
# stream (or frame, or body read whole) in KB, the characters of an answer's text and
# reasoning, and of its tool calls; seconds to the first byte of an answer (its tries and
# any token exchange together), and the longest silence within one. Each bound reached ends
# the answer with a sentence, its text kept.
PLAYGROUND_READ_LIMITS = ReadLimits(
    error_body_bytes=int(env_number("PLAYGROUND_ERROR_BODY_KB", 64, 1, 10_240)) * 1024,
    line_bytes=int(env_number("PLAYGROUND_LINE_KB", 1024, 1, 65_536)) * 1024,
    answer_chars=int(env_number("PLAYGROUND_ANSWER_CHARS", 1_000_000, 1_000, 100_000_000)),
    tool_call_chars=int(env_number("PLAYGROUND_TOOL_CALL_CHARS", 1_000_000, 1_000, 100_000_000)),
    first_byte_seconds=env_number("PLAYGROUND_FIRST_BYTE_SECONDS", 120, 1, 3_600),
    stall_seconds=env_number("PLAYGROUND_STALL_SECONDS", 120, 1, 3_600),
)
# Faults: how long a worker told to stop (SIGTERM) lets its answers finish before it ends the
# rest "interrupted" with their text, and how long it keeps trying to save an answer's end
# while the database does not answer (then the watchdog ends it from its log).
PLAYGROUND_SHUTDOWN_GRACE_SECONDS = env_number("PLAYGROUND_SHUTDOWN_GRACE_SECONDS", 20, 0, 3600)
PLAYGROUND_DB_RETRY_SECONDS = env_number("PLAYGROUND_DB_RETRY_SECONDS", 30, 0, 3600)
# How often one of the workers ends the panes whose worker died while nobody watched them
# (worker/sweep.py); 0: only when someone looks.
PLAYGROUND_SWEEP_SECONDS = env_number("PLAYGROUND_SWEEP_SECONDS", 15, 0, 3600)
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
# Sign-in (playground/signin.py, the site's and the admin's): failed sign-ins one browser
# that signed in to the account before (its device cookie) may make, and strangers to one
# account, and one client address, in a window of PLAYGROUND_SIGNIN_WINDOW_SECONDS before
# every such try is refused until the window ends. 0 turns a limit off. A device cookie
# lasts PLAYGROUND_SIGNIN_DEVICE_DAYS from the sign-in that gave it.
PLAYGROUND_SIGNIN_TRIES_PER_DEVICE = int(
    env_number("PLAYGROUND_SIGNIN_TRIES_PER_DEVICE", 5, 0, 100_000)
)
PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT = int(
    env_number("PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT", 10, 0, 100_000)
)
PLAYGROUND_SIGNIN_TRIES_PER_IP = int(env_number("PLAYGROUND_SIGNIN_TRIES_PER_IP", 50, 0, 100_000))
PLAYGROUND_SIGNIN_DEVICE_DAYS = int(env_number("PLAYGROUND_SIGNIN_DEVICE_DAYS", 365, 1, 3650))
PLAYGROUND_SIGNIN_WINDOW_SECONDS = int(
    env_number("PLAYGROUND_SIGNIN_WINDOW_SECONDS", 900, 10, 86_400)
)

# Request bodies (playground/body_limit.py), refused with 413 before Django reads them and
# before anyone's sign-in is looked at: a form's worst case (the prompt, the system prompt
# and the tools, each character as 12 bytes: 4 in UTF-8, percent-encoded) and 1 MiB more;
# Send, which takes files, that and the images, videos, recordings and frames it accepts
# besides.
PLAYGROUND_MAX_BODY_BYTES = 12 * (2 * PLAYGROUND_MAX_PROMPT_CHARS + MAX_TOOLS_CHARS) + 2**20
PLAYGROUND_MAX_UPLOAD_BYTES = (
    PLAYGROUND_MAX_BODY_BYTES
    + MAX_IMAGES * MAX_IMAGE_BYTES
    + MAX_VIDEOS * MAX_VIDEO_BYTES
    + MAX_AUDIOS * MAX_AUDIO_BYTES
    + MAX_FRAMES * MAX_FRAME_BYTES
)
DATA_UPLOAD_MAX_MEMORY_SIZE = PLAYGROUND_MAX_BODY_BYTES  # a body without its files
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
# More than Send takes, so Send says so.
DATA_UPLOAD_MAX_NUMBER_FILES = 2 * (MAX_IMAGES + MAX_VIDEOS + MAX_AUDIOS + MAX_FRAMES)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
