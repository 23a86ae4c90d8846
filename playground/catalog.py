"""The models a person can pick, and how each is reached.

The catalog is data (``CatalogEntry`` rows, admin-editable, seeded by a migration). This
module reads it into small immutable ``CatalogModel`` values, cached per process for a few
seconds (then read again in the background) and dropped at once when an entry is saved
in this process. Remote models are listed even without a key so people see what exists;
picking one without a key is refused at Send with a sentence saying how to add the key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from django.conf import settings

from providers.base import Credentials, Param, ParamError, Provider
from providers.registry import UnknownProvider, provider_class

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0  # an admin's change applies within this, plus one read
STALE_SECONDS = 300.0
# The read in the background starts this long after the get that asked for it: that get
# is a Send or a claim, and the read (a thread, a connection, a query, ~1.5 ms of CPU)
# competed with it for the GIL, in daphne and in the worker: ~2 ms of the claim's time at
# light load (timing marks, docs/performance.md).
REFRESH_DELAY_S = 1.0
REFRESH_THREAD = "playground-cache-read"
T = TypeVar("T")


@dataclass(frozen=True)
class CatalogModel:
    key: str  # stable id used in forms and rows, e.g. "openai:gpt-4.1-mini"
    display_name: str
    provider: str  # providers.registry name
    model_id: str  # what the provider's API calls it
    base_url: str = ""
    concurrency: int = 16  # requests the endpoint serves at once
    defaults: dict[str, Any] = field(default_factory=dict)
    vision: bool = False
    video: bool = False
    audio: bool = False
    tools: bool = False
    reasoning: bool = False
    web_search: bool = False
    context_window: int | None = None
    max_output_tokens: int | None = None
    input_price: Decimal | None = None  # per million tokens
    output_price: Decimal | None = None
    # Per million audio / video input tokens, when the provider prices them apart.
    audio_input_price: Decimal | None = None
    video_input_price: Decimal | None = None
    currency: str = "USD"
    # A model of an endpoint brings its own key: whose it is ("user" or "team") and the
    # endpoint's name, for the pane's status line (playground.own_models).
    key_scope: str = ""
    key_label: str = ""

    @property
    def provider_class(self) -> type[Provider]:
        return provider_class(self.provider)

    @property
    def params(self) -> tuple[Param, ...]:
        return self.provider_class.params

    @property
    def endpoint(self) -> str:
        """The key under which concurrency is limited: one per server."""
        return self.base_url or self.provider_class.default_base_url or self.provider

    @property
    def key_env(self) -> str:
        return self.provider_class.key_env

    @property
    def typed_base_url(self) -> bool:
        """True when the model is reached at a base URL typed into its catalog entry (or a
        person's endpoint): not its provider's own default, not the operator's
        ``PLAYGROUND_<NAME>_BASE_URL``, not the local model's URL."""
        if not self.base_url:
            return False
        return normalized_url(self.base_url) not in operator_base_urls(self.provider)

    @property
    def site_key_allowed(self) -> bool:
        """Whether the site environment's key for this provider may be sent where this model
        is reached: only to the provider's own default base URL, the operator's URL for it,
        or a host the operator lists in ``PLAYGROUND_SITE_KEY_HOSTS``. Whoever may edit a
        catalog entry could otherwise point it at their own server and receive the key
        (LiteLLM CVE-2024-6587)."""
        if self.key_scope:
            return False  # an endpoint's model: its own key only
        if not self.typed_base_url:
            return True
        host = (urlsplit(self.base_url).hostname or "").lower().rstrip(".")
        return host in settings.PLAYGROUND_SITE_KEY_HOSTS

    @property
    def private_hosts(self) -> list[str] | None:
        """None when calls may reach any address (the provider's default, the operator's
        URL); otherwise the base URL was typed by someone (a person, or staff in admin),
        and every connection must go to a public address or one of these hosts."""
        if self.key_scope:
            return list(settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS)
        if not self.typed_base_url or not self.provider_class.calls_out:
            return None
        return list(settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS)

    @property
    def server_host(self) -> str:
        return urlsplit(self.base_url).hostname or self.base_url

    @property
    def missing_env(self) -> list[str]:
        """The environment variables this model's credentials still need (all of them when
        the site's keys may not go where it is reached)."""
        cls = self.provider_class
        needed = [cls.key_env] if cls.needs_key and cls.key_env else []
        needed += [
            env
            for part, env in cls.extra_credentials.items()
            if part not in cls.optional_credentials
        ]
        if not self.site_key_allowed:
            return needed
        return [name for name in needed if not settings.PLAYGROUND_PROVIDER_KEYS.get(name)]

    @property
    def needs(self) -> str:
        """What the Model picker says this model needs before it can be picked ("" if
        nothing): the environment variables, or a key for the server it is reached at."""
        missing = self.missing_env
        if missing and not self.site_key_allowed:
            return f"a key for {self.server_host}"
        return ", ".join(missing)

    @property
    def site_key_refusal(self) -> str:
        """Why the site environment's key cannot answer for this model where it is reached
        now (a sentence), or "" when it can or none is needed there."""
        if self.site_key_allowed or not self.missing_env:
            return ""
        name = self.provider_class.display_name
        return (
            f"The site's {name} key is sent only to {name}'s own server, and "
            f"{self.display_name} is reached at {self.server_host}: pick a key saved for "
            "that server in the pane's Key list, or add one under Keys."
        )

    def credentials(self) -> Credentials:
        """The site's credentials for this model (settings.PLAYGROUND_PROVIDER_KEYS), none
        where they may not go (:attr:`site_key_allowed`). Only the worker calls this, to
        build a request."""
        cls = self.provider_class
        if not self.site_key_allowed:
            return Credentials()
        keys = settings.PLAYGROUND_PROVIDER_KEYS
        return Credentials(
            api_key=keys.get(cls.key_env, "") if cls.key_env else "",
            extra={part: keys.get(env, "") for part, env in cls.extra_credentials.items()},
        )

    @property
    def available(self) -> bool:
        return not self.missing_env

    def clean_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters, or ParamError naming this model."""
        try:
            cleaned = self.provider_class.clean_params(values)
            self.provider_class.check_params(self.model_id, cleaned)
            return cleaned
        except ParamError as error:
            raise ParamError(f"{self.display_name}: {error}") from None

    def cost(
        self,
        input_tokens: int | None,
        output_tokens: int | None,
        audio_tokens: int | None = None,
        video_tokens: int | None = None,
    ) -> Decimal | None:
        """What an answer cost at list price, or None when a price or a count is unknown.
        ``audio_tokens`` and ``video_tokens``: the part of ``input_tokens`` the provider
        reported as audio or video, priced at their own price where the catalog has one."""
        if self.input_price is None or self.output_price is None:
            return None
        if input_tokens is None or output_tokens is None:
            return None
        total = self.output_price * output_tokens
        rest = input_tokens
        for tokens, price in (
            (audio_tokens, self.audio_input_price),
            (video_tokens, self.video_input_price),
        ):
            if tokens and price is not None:
                tokens = min(tokens, rest)
                total += price * tokens
                rest -= tokens
        return (total + self.input_price * rest) / 1_000_000


class ShortCache(Generic[T]):
    """One value per process, dropped when told to forget. Older than CACHE_SECONDS it is
    still served while a thread of its own reads it again, a moment later (so no Send and
    no claim waits for that read, or shares the CPU with it); older than STALE_SECONDS,
    the caller reads it again itself."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._value: tuple[float, T] | None = None
        self._generation = 0  # bumped by forget: a read begun before it is not kept
        self._refreshing = False

    def get(self) -> T:
        with self._lock:
            held, generation = self._value, self._generation
            if held is not None:
                age = time.monotonic() - held[0]
                if age < CACHE_SECONDS:
                    return held[1]
                if age < STALE_SECONDS:
                    if not self._refreshing:
                        self._refreshing = True
                        reader = threading.Timer(REFRESH_DELAY_S, self._refresh, args=(generation,))
                        reader.name, reader.daemon = REFRESH_THREAD, True
                        reader.start()
                    return held[1]
        value = self._load()
        self._keep(value, generation)
        return value

    def forget(self, **_: Any) -> None:
        with self._lock:
            self._value = None
            self._generation += 1

    def _keep(self, value: T, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._value = (time.monotonic(), value)

    def _refresh(self, generation: int) -> None:
        from django.db import connections

        try:
            self._keep(self._load(), generation)
        except Exception:  # the old value stays; the next get past STALE_SECONDS reads
            log.exception("reading a cached value again failed")
        finally:
            with self._lock:
                self._refreshing = False
            connections.close_all()  # this thread's own connections


def normalized_url(url: str) -> str:
    return url.strip().rstrip("/")


def operator_base_urls(provider: str) -> set[str]:
    """Where the code or the operator (not a catalog entry) says ``provider`` is reached:
    its adapter's default base URL, ``PLAYGROUND_<NAME>_BASE_URL``, and for the local model
    ``PLAYGROUND_LOCAL_MODEL_URL``."""
    try:
        default = provider_class(provider).default_base_url
    except (UnknownProvider, ImportError, AttributeError):
        default = ""
    urls = {default, settings.PLAYGROUND_BASE_URLS.get(provider, "")}
    if provider == "local":
        urls.add(settings.PLAYGROUND_LOCAL_MODEL_URL)
    return {normalized_url(u) for u in urls if u}


def catalog() -> dict[str, CatalogModel]:
    """Enabled, usable-in-principle models by key, in picker order."""
    return _catalog.get()


def forget_catalog(**_: Any) -> None:
    """Drop this process's copy (an entry changed)."""
    _catalog.forget()


def _load() -> dict[str, CatalogModel]:
    from playground.models import CatalogEntry

    models: dict[str, CatalogModel] = {}
    for entry in CatalogEntry.objects.filter(enabled=True):
        try:
            cls = provider_class(entry.provider)
        except (UnknownProvider, ImportError, AttributeError):
            log.warning("catalog entry %s names unknown provider %r", entry.key, entry.provider)
            continue
        base_url = entry.base_url
        concurrency = entry.concurrency or settings.PLAYGROUND_ENDPOINT_CONCURRENCY
        if entry.provider == "local":
            base_url = base_url or settings.PLAYGROUND_LOCAL_MODEL_URL
            if not base_url:
                continue  # no local model server in this deployment
            concurrency = entry.concurrency or settings.PLAYGROUND_LOCAL_CONCURRENCY
        base_url = base_url or settings.PLAYGROUND_BASE_URLS.get(entry.provider, "")
        if not (base_url or cls.default_base_url or cls.name == "echo"):
            continue  # nowhere to send it (e.g. a per-deployment endpoint not configured)
        models[entry.key] = CatalogModel(
            key=entry.key,
            display_name=entry.display_name,
            provider=entry.provider,
            model_id=entry.model_id,
            base_url=base_url,
            concurrency=concurrency,
            defaults=dict(entry.defaults or {}),
            vision=entry.vision and cls.supports_images,
            video=entry.video and bool(cls.video_forms or cls.supports_images),
            audio=entry.audio and bool(cls.audio_forms),
            tools=entry.tools and cls.supports_tools,
            reasoning=entry.reasoning,
            web_search=entry.web_search,
            context_window=entry.context_window,
            max_output_tokens=entry.max_output_tokens,
            input_price=entry.input_price,
            output_price=entry.output_price,
            audio_input_price=entry.audio_input_price,
            video_input_price=entry.video_input_price,
            currency=entry.currency,
        )
    return models


def default_pane_models(models: dict[str, CatalogModel] | None = None) -> list[str]:
    """What a new comparison starts with: the local model against echo. ``models``: what
    the person may pick (``endpoints.models_for_user``), else the catalog. Empty when there
    is nothing to pick (an admin disabled every model, and the person has no endpoint)."""
    keys = list(catalog() if models is None else models)
    return [k for k in ("local:smollm2", "echo") if k in keys] or keys[:1]


_catalog = ShortCache(_load)


# --------------------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __bool__(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute)

    def describe(self) -> str:
        parts = []
        if self.requests_per_minute:
            rpm = self.requests_per_minute
            parts.append(f"{rpm} request{'s' if rpm != 1 else ''}")
        if self.tokens_per_minute:
            parts.append(f"{self.tokens_per_minute:,} tokens")
        return " and ".join(parts) + " a minute"


def _load_limits() -> dict[str, Limits]:
    from playground.models import RateLimit

    return {
        row.provider: Limits(row.requests_per_minute, row.tokens_per_minute)
        for row in RateLimit.objects.all()
    }


# Read once per turn by the worker; an admin's change applies within CACHE_SECONDS.
_limits: ShortCache[dict[str, Limits]] = ShortCache(_load_limits)


def provider_limits() -> dict[str, Limits]:
    """The configured limits by provider name (rows of the RateLimit admin)."""
    return _limits.get()


def forget_limits(**_: Any) -> None:
    _limits.forget()
