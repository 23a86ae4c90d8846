"""Which key answers a pane, chosen at Send without opening any; and saving a key.

The order: the credential the pane names (one its person may use), else the person's own
for that provider, then the active team's, then the organisation's, then the site
environment's variables. Only credentials saved for the very server the model is reached
at count: a key is only ever sent to the base URL it was saved with, so pointing a catalog
entry somewhere else leaves its saved keys behind.

Opening a credential is the worker's (``playground.worker.keys``); nothing here decrypts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from playground import vault
from playground.catalog import CatalogModel, ShortCache, normalized_url
from playground.models import Credential, Scope
from providers.base import ChatRequest, Credentials, ProviderError


@dataclass(frozen=True)
class KeyChoice:
    """The key a pane will use: its scope, its row (None: the site environment, or a
    model that needs no key) and the words the pane's status line shows."""

    scope: str
    credential_id: int | None = None
    label: str = ""
    endpoint: bool = False  # the key of a person's own (or their team's) endpoint

    @property
    def says(self) -> str:
        if self.endpoint:
            whose = "your" if self.scope == Scope.USER else "team"
            return f"{whose} endpoint '{self.label}'"
        return says(self.scope, self.label)


def says(scope: str, label: str) -> str:
    """ "your key 'work'", "team key 'research'", "site key 'shared'", "site environment"."""
    if scope == Scope.USER:
        return f"your key '{label}'" if label else "your key"
    if scope == Scope.TEAM:
        return f"team key '{label}'" if label else "team key"
    if scope == Scope.ORG:
        return f"site key '{label}'" if label else "site key"
    if scope == Scope.ENV:
        return "site environment"
    return ""


def model_base_url(model: CatalogModel) -> str:
    """The server a catalog model's calls go to (its entry's, or its provider's default)."""
    return normalized_url(model.base_url or model.provider_class.default_base_url)


def usable(user_id: int) -> Q:
    """The credentials a person may use: their own, their teams', the organisation's."""
    return Q(enabled=True) & (
        Q(scope=Scope.USER, user_id=user_id)
        | Q(scope=Scope.TEAM, team__memberships__user_id=user_id)
        | Q(scope=Scope.ORG)
    )


def usable_credentials(
    user_id: int, providers: Iterable[str] | None = None
) -> QuerySet[Credential]:
    """One query; never more than one row per credential."""
    rows = Credential.objects.filter(usable(user_id))
    if providers is not None:
        rows = rows.filter(provider__in=set(providers))
    return rows.only(
        "pk", "provider", "label", "scope", "user_id", "team_id", "base_url"
    ).distinct()


def _load_keyed_providers() -> frozenset[str]:
    return frozenset(
        Credential.objects.filter(enabled=True).values_list("provider", flat=True).distinct()
    )


# The providers anyone saved a key for: a Send whose panes' providers have none reads no
# credential (an admin's or a person's new key applies at once in the process that saved
# it, within catalog.CACHE_SECONDS in the others).
_keyed_providers: ShortCache[frozenset[str]] = ShortCache(_load_keyed_providers)


def keyed_providers() -> frozenset[str]:
    return _keyed_providers.get()


def forget_keyed_providers(**_: Any) -> None:
    _keyed_providers.forget()


class KeyRefused(Exception):
    """No key may answer this pane; the message is the sentence."""


@dataclass
class KeyChooser:
    """Chooses keys for the panes of one Send: one query for every pane."""

    user_id: int
    team_id: int | None  # the active team
    rows: list[Credential]

    @classmethod
    def load(cls, user_id: int, active: int | None, providers: Iterable[str]) -> KeyChooser:
        return cls(user_id, active, list(usable_credentials(user_id, providers)))

    def choose(self, model: CatalogModel, picked: int | None = None) -> KeyChoice:
        """The key for ``model``, or :class:`KeyRefused` saying why there is none."""
        if model.key_scope:  # an endpoint's model: the endpoint's own key
            return KeyChoice(model.key_scope, None, model.key_label, endpoint=True)
        if not model.provider_class.credential_parts() and picked is None:
            return KeyChoice("")  # takes no key (echo, the local model)
        url = model_base_url(model)
        fits = [c for c in self.rows if c.provider == model.provider and c.base_url == url]
        if picked is not None:
            chosen = next((c for c in fits if c.pk == picked), None)
            if chosen is None:
                raise KeyRefused(
                    f"the key picked for {model.display_name} cannot be used with it (deleted, "
                    "disabled, not yours, or saved for another server); pick another."
                )
            return KeyChoice(chosen.scope, chosen.pk, chosen.label)
        # A team's key answers on its own only while that team is active: without one,
        # the person works on their own (their teams' keys may still be picked).
        for c in fits:
            if c.scope == Scope.USER and c.user_id == self.user_id:
                return KeyChoice(Scope.USER, c.pk, c.label)
        for c in fits:
            if c.scope == Scope.TEAM and self.team_id is not None and c.team_id == self.team_id:
                return KeyChoice(Scope.TEAM, c.pk, c.label)
        for c in fits:
            if c.scope == Scope.ORG:
                return KeyChoice(Scope.ORG, c.pk, c.label)
        if model.available:
            keys = settings.PLAYGROUND_PROVIDER_KEYS
            names = [model.key_env, *model.provider_class.extra_credentials.values()]
            return KeyChoice(Scope.ENV if any(keys.get(n) for n in names if n) else "")
        if not model.site_key_allowed and model.provider_class.credential_parts():
            raise KeyRefused(
                f"{model.display_name} needs a key for {model.server_host}, the server it is "
                "reached at (the site's own key is sent only to the provider's own server): "
                f"add your {model.provider_class.display_name} key for that server under "
                "Keys, or ask a team admin to share one."
            )
        raise KeyRefused(
            f"{model.display_name} needs a key: add your {model.provider_class.display_name} "
            "key under Keys, or ask a team admin to share one."
        )


# --------------------------------------------------------------------------- saving


class CredentialInvalid(ValueError):
    """What is wrong with the parts given for a credential; a sentence."""


def clean_parts(provider: str, given: Mapping[str, str]) -> dict[str, str]:
    """The parts of a credential for ``provider`` as the adapter declares them, trimmed,
    checked for what is required and for what the adapter itself refuses; or
    :class:`CredentialInvalid`."""
    from providers.registry import provider_class

    cls = provider_class(provider)
    declared = cls.credential_parts()
    if not declared:
        raise CredentialInvalid(f"{cls.display_name} takes no key.")
    parts: dict[str, str] = {}
    for part in declared:
        value = str(given.get(part.name, "")).strip()
        if len(value) > 4000:
            raise CredentialInvalid(f"{part.label} is too long.")
        if value and (any(ch.isspace() for ch in value) and part.secret):
            raise CredentialInvalid(f"{part.label} cannot contain spaces or line breaks.")
        if part.required and not value:
            raise CredentialInvalid(f"Enter the {part.label}.")
        if value:
            parts[part.name] = value
    if not parts:
        raise CredentialInvalid(f"Enter the {declared[0].label}.")
    creds = Credentials(
        api_key=parts.get("api_key", ""),
        extra={k: v for k, v in parts.items() if k != "api_key"},
    )
    try:
        cls().check_credentials(ChatRequest(model="", messages=[], credentials=creds))
    except ProviderError as error:
        # The adapter's sentence names environment variables; here the fields are the way.
        raise CredentialInvalid(error.message.split(": set ")[0] + ".") from None
    return parts


def hint_of(parts: Mapping[str, str]) -> str:
    secret = parts.get("api_key") or next(iter(parts.values()), "")
    return vault.hint(secret)


def seal_parts(credential: Credential, parts: Mapping[str, str]) -> None:
    """Put ``parts`` into ``credential`` (ciphertext bound to the row, and the hint); the
    row's owner, provider and base URL must be set first, and are bound in."""
    credential.base_url = normalized_url(credential.base_url)
    credential.ciphertext = vault.seal(parts, credential.binding)
    credential.hint = hint_of(parts)
    credential.test_passed = None
    credential.tested_at = None
    credential.test_message = ""


def base_urls_for(provider: str, models: Iterable[CatalogModel]) -> list[str]:
    """The servers a key for ``provider`` may be saved for: where the catalog's models of
    that provider are reached (usually one)."""
    urls = [model_base_url(m) for m in models if m.provider == provider]
    return sorted({u for u in urls if u})


def provider_choices(models: Iterable[CatalogModel]) -> list[tuple[str, str]]:
    """(provider name, display name) of the catalog's providers that take a key."""
    seen: dict[str, str] = {}
    for model in models:
        cls = model.provider_class
        if cls.credential_parts() and model.provider not in seen:
            seen[model.provider] = cls.display_name
    return sorted(seen.items(), key=lambda item: item[1].lower())
