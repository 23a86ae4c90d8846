"""The admin's form for an organisation or team credential: its secret parts are write-only.

There is one field per part any provider declares (``Provider.credential_parts``); a key
for one provider uses only its own. Nothing here decrypts, so no saved part is ever shown
back: adding asks for every part the provider requires; on a change, parts left empty keep
the saved key and parts entered replace it (all of them again). The key is sealed to its
provider, owner and server (``Credential.binding``), so changing any of those needs the key
entered again: the saved one would no longer open.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.validators import URLValidator
from django.forms.models import ModelFormMetaclass
from django.utils.functional import cached_property

from playground.catalog import catalog
from playground.credentials import (
    CredentialInvalid,
    base_urls_for,
    clean_parts,
    normalized_url,
    seal_parts,
)
from playground.models import Credential, Scope
from providers.base import CredentialPart, Provider
from providers.registry import PROVIDERS, UnknownProvider, provider_class

PART_PREFIX = "part_"
ADMIN_SCOPES = [(Scope.ORG.value, Scope.ORG.label), (Scope.TEAM.value, Scope.TEAM.label)]
URL_SCHEMES = ["http", "https", "ws", "wss"]  # iFlytek Spark is reached over a websocket

KEY_AGAIN = (
    "Enter the key again: it is sealed to its provider, owner and server, so the saved one "
    "would not open after changing them (and it is never shown back)."
)


def providers_taking_keys() -> dict[str, type[Provider]]:
    """Every provider that takes a credential, by name (one that cannot be imported is left
    out, as the catalog leaves it out)."""
    found = {}
    for name in PROVIDERS:
        try:
            cls = provider_class(name)
        except (UnknownProvider, ImportError, AttributeError):
            continue
        if cls.credential_parts():
            found[name] = cls
    return found


Use = tuple[str, str, CredentialPart]  # (provider name, how the form names it, part)


def part_uses() -> dict[str, list[Use]]:
    """Each part name, with the providers that ask for it and how each labels it."""
    taking = providers_taking_keys()
    shown = [cls.display_name for cls in taking.values()]
    uses: dict[str, list[Use]] = {}
    for name, cls in taking.items():
        # Two adapters of one vendor ("Baidu Qianfan") are told apart by their names.
        said = cls.display_name if shown.count(cls.display_name) == 1 else provider_label(name)
        for part in cls.credential_parts():
            uses.setdefault(part.name, []).append((name, said, part))
    return uses


def provider_label(name: str) -> str:
    """ "Baidu Qianfan (qianfan_v1)": what the provider list shows."""
    return f"{provider_class(name).display_name} ({name})"


def field_label(part_name: str) -> str:
    """ "api_key" -> "API key", "iam_endpoint" -> "IAM endpoint", "app_id" -> "App ID"."""
    words = [w.upper() if w in ("api", "iam", "id") else w for w in part_name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _used_by(uses: list[Use]) -> str:
    said: list[str] = []
    for _, provider, part in uses:
        notes = [] if part.label == field_label(part.name) else [f"its “{part.label}”"]
        if not part.required:
            notes.append("optional")
        said.append(provider + (f", {', '.join(notes)}" if notes else ""))
    return "Used by: " + "; ".join(said) + "."


def part_fields() -> dict[str, forms.Field]:
    """One form field per part name. A secret part is a password field never filled back
    in; the others (a region, an app id) are plain text, still never shown once saved."""
    fields: dict[str, forms.Field] = {}
    for name, uses in part_uses().items():
        secret = any(part.secret for _, _, part in uses)
        widget: forms.Widget = (
            forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            if secret
            else forms.TextInput(attrs={"autocomplete": "off"})
        )
        fields[PART_PREFIX + name] = forms.CharField(
            label=field_label(name),
            required=False,
            strip=True,
            max_length=4000,
            widget=widget,
            help_text=_used_by(uses),
        )
    return fields


def default_base_url(provider: str) -> str:
    """Where the catalog reaches this provider's models, else the adapter's default."""
    urls = base_urls_for(provider, catalog().values())
    return urls[0] if urls else normalized_url(provider_class(provider).default_base_url)


def _provider_choices() -> list[tuple[str, str]]:
    taking = providers_taking_keys()
    names = sorted(taking, key=lambda n: (taking[n].display_name.lower(), n))
    return [("", "---------")] + [(n, provider_label(n)) for n in names]


class CredentialFormBase(forms.ModelForm):
    provider = forms.ChoiceField(
        choices=_provider_choices,
        help_text="Only the parts this provider uses are asked for below; leave the others empty.",
    )
    scope = forms.ChoiceField(
        choices=ADMIN_SCOPES,
        initial=Scope.ORG,
        label="Belongs to",
        help_text="Organisation: anyone may use it. Team: the team's members (choose the "
        "team below).",
    )
    base_url = forms.CharField(
        label="Base URL",
        required=False,
        max_length=500,
        validators=[URLValidator(schemes=URL_SCHEMES)],
        help_text="The only server this key is ever sent to; it is used for the catalog's "
        "models reached there. Empty: where the catalog reaches the provider (e.g. "
        "https://api.openai.com/v1 for OpenAI).",
    )

    class Meta:
        model = Credential
        fields = ["provider", "label", "scope", "team", "base_url", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The parts to seal on save; None keeps the saved key.
        self.new_parts: dict[str, str] | None = None
        self.saved_base_url = self.instance.base_url

    @cached_property
    def changed_data(self) -> list[str]:
        """As Django has it, less a base URL that only differs in how it was written (a
        trailing slash, or left empty for the same default): the history says what changed."""
        changed = super().changed_data
        cleaned = getattr(self, "cleaned_data", {})
        if not self.adding and cleaned.get("base_url") == self.saved_base_url:
            return [name for name in changed if name != "base_url"]
        return changed

    @property
    def adding(self) -> bool:
        return self.instance._state.adding

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        scope, team, provider = data.get("scope"), data.get("team"), data.get("provider")
        if scope == Scope.ORG and team is not None:
            self.add_error("team", "An organisation key belongs to no team: clear the team.")
        if scope == Scope.TEAM and team is None:
            self.add_error("team", "Choose the team this key belongs to.")
        if not provider:
            return data
        if not data.get("base_url") and "base_url" not in self.errors:
            data["base_url"] = default_base_url(provider)
            if not data["base_url"]:
                self.add_error("base_url", "Enter the server: this provider has no default.")
        data["base_url"] = normalized_url(data.get("base_url") or "")
        self._clean_parts(provider, data)
        return data

    def _clean_parts(self, provider: str, data: dict[str, Any]) -> None:
        cls = provider_class(provider)
        own = {part.name for part in cls.credential_parts()}
        given = {
            name[len(PART_PREFIX) :]: value
            for name, value in data.items()
            if name.startswith(PART_PREFIX) and value
        }
        for name in sorted(set(given) - own):
            self.add_error(
                PART_PREFIX + name, f"{cls.display_name} does not use this: leave it empty."
            )
        if self.adding or given:
            try:
                self.new_parts = clean_parts(provider, given)
            except CredentialInvalid as error:
                self.add_error(None, str(error))
        elif self._moved(data):
            self.add_error(None, KEY_AGAIN)

    def _moved(self, data: dict[str, Any]) -> bool:
        """Whether the saved key's seal no longer fits: another provider, owner or server."""
        row = self.instance
        team = data.get("team")
        return (
            data.get("provider") != row.provider
            or data.get("scope") != row.scope
            or (team.pk if team is not None else None) != row.team_id
            or data.get("base_url") != row.base_url
        )

    def save(self, commit: bool = True) -> Credential:
        row: Credential = super().save(commit=False)
        if self.new_parts is not None:
            seal_parts(row, self.new_parts)  # after the owner, provider and server are set
        if commit:
            row.save()
        return row


#: The form with its part fields declared (the admin builds its form from declared fields).
CredentialForm = cast(
    type[CredentialFormBase],
    ModelFormMetaclass(
        "CredentialForm", (CredentialFormBase,), {"__module__": __name__, **part_fields()}
    ),
)
PART_FIELDS = tuple(name for name in CredentialForm.base_fields if name.startswith(PART_PREFIX))
