"""The form that saves a provider key, a person's own or a team's: the provider, a label,
the server the key is for, and the parts that provider's adapter asks for
(``Provider.credential_parts``: a key, sometimes a secret, an app id, a region).

Every problem is a sentence, and nothing is saved unless all is well. Secret parts are
write-only: never filled back in (a form with errors asks for them again), and on a
change, empty part fields keep the saved key. Replacing a key means entering all of its
parts again: the web process never opens a saved one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.views.decorators.debug import sensitive_variables

from playground.catalog import catalog
from playground.credentials import (
    CredentialInvalid,
    base_urls_for,
    clean_parts,
    normalized_url,
    provider_choices,
)
from playground.models import Credential
from providers.registry import UnknownProvider, provider_class

MAX_LABEL = 80
PART_PREFIX = "part-"  # the form's name of a part: "part-api_key", "part-secret_key"


@dataclass(frozen=True)
class PartField:
    name: str  # the form field's name
    label: str
    required: bool
    secret: bool
    value: str = ""  # what is filled back in: never a secret's


@dataclass
class KeyForm:
    """What the add (or change) form shows: the choices, what was typed, the sentences."""

    providers: list[tuple[str, str]]  # (name, display name) of the providers that take a key
    provider: str
    label: str
    base_url: str
    base_urls: list[str]  # the servers a key for this provider may be saved for
    parts: list[PartField]
    errors: list[str] = field(default_factory=list)
    editing: Credential | None = None

    @property
    def provider_name(self) -> str:
        return provider_name(self.provider)


def provider_name(provider: str) -> str:
    try:
        return provider_class(provider).display_name
    except (UnknownProvider, ImportError, AttributeError):
        return provider


def part_fields(provider: str, values: Mapping[str, str] | None = None) -> list[PartField]:
    """The fields of ``provider``'s parts; ``values``: typed before, kept for the parts
    that are not secrets."""
    values = values or {}
    try:
        declared = provider_class(provider).credential_parts() if provider else ()
    except (UnknownProvider, ImportError, AttributeError):
        declared = ()
    return [
        PartField(
            PART_PREFIX + p.name,
            p.label,
            p.required,
            p.secret,
            "" if p.secret else str(values.get(p.name, ""))[:200],
        )
        for p in declared
    ]


def new_form(
    provider: str = "",
    label: str = "",
    base_url: str = "",
    values: Mapping[str, str] | None = None,
    errors: list[str] | None = None,
) -> KeyForm:
    """The add form for ``provider`` (the first provider when it is not one that takes a
    key); the server preselected when there is only one."""
    models = catalog().values()
    choices = provider_choices(models)
    if provider not in dict(choices):
        provider = choices[0][0] if choices else ""
    urls = base_urls_for(provider, models) if provider else []
    if base_url not in urls:
        base_url = urls[0] if len(urls) == 1 else ""
    return KeyForm(
        choices, provider, label, base_url, urls, part_fields(provider, values), errors or []
    )


def edit_form(
    row: Credential,
    label: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: list[str] | None = None,
) -> KeyForm:
    """The change form of a saved key: its label, and its parts to replace (all empty)."""
    return KeyForm(
        [],
        row.provider,
        row.label if label is None else label,
        row.base_url,
        [row.base_url],
        part_fields(row.provider, values),
        errors or [],
        editing=row,
    )


def given_parts(data: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(PART_PREFIX) :]: str(value)
        for name, value in data.items()
        if name.startswith(PART_PREFIX)
    }


def label_errors(label: str, owned: QuerySet[Credential], whose: str) -> list[str]:
    """``owned``: the owner's other keys; ``whose``: "You already have", "Team x already has"."""
    if not label:
        return ["Give the key a label, such as “work”: your panes name it by its label."]
    if len(label) > MAX_LABEL:
        return [f"The label is longer than {MAX_LABEL} characters."]
    if not label.isprintable():
        return ["The label cannot hold line breaks or control characters."]
    if owned.filter(label__iexact=label).exists():
        return [f"{whose} a key labelled “{label}”; pick another label."]
    return []


@sensitive_variables("given", "cleaned")
def read_new(
    data: Mapping[str, str], owned: QuerySet[Credential], whose: str
) -> tuple[KeyForm, dict[str, str]]:
    """The add form as posted, and the parts to seal (empty unless all is well). A form
    whose provider was changed without JavaScript (the fields shown were another
    provider's) comes back with that provider's fields and no sentence."""
    provider = str(data.get("provider", "")).strip()
    label = str(data.get("label", "")).strip()
    base_url = normalized_url(str(data.get("base_url", "")))
    given = given_parts(data)
    models = catalog().values()
    if provider not in dict(provider_choices(models)):
        return new_form("", label, errors=["Pick a provider from the list."]), {}
    shown = data.get("fields_for")
    if shown is not None and shown != provider:
        return new_form(provider, label), {}
    errors = label_errors(label, owned, whose)
    urls = base_urls_for(provider, models)
    if base_url not in urls:
        errors.append(
            f"Pick one of the servers listed for {provider_name(provider)}: a key is only "
            "ever sent to the server it was saved for."
        )
        base_url = ""
    cleaned: dict[str, str] = {}
    try:
        cleaned = clean_parts(provider, given)
    except CredentialInvalid as invalid:
        errors.append(str(invalid))
    form = new_form(provider, label, base_url, given, errors)
    return form, ({} if errors else cleaned)


@sensitive_variables("given", "cleaned")
def read_edit(
    data: Mapping[str, str], row: Credential, owned: QuerySet[Credential], whose: str
) -> tuple[KeyForm, dict[str, str]]:
    """The change form as posted, and the parts to seal again: empty when no part was
    typed (the saved key is kept) or when something is wrong."""
    label = str(data.get("label", "")).strip()
    errors = label_errors(label, owned.exclude(pk=row.pk), whose)
    given = given_parts(data)
    cleaned: dict[str, str] = {}
    if any(value.strip() for value in given.values()):
        try:
            cleaned = clean_parts(row.provider, given)
        except CredentialInvalid as invalid:
            errors.append(str(invalid))
    return edit_form(row, label, given, errors), ({} if errors else cleaned)
