"""The form that saves a person's own endpoint: name, base URL, optional key, model ids,
and the team it is shared with (one of the owner's teams, or none).

Every problem is a sentence on its field, and nothing is saved unless all fields are good.
The key field is write-only: it is never filled back in (a form with errors asks for the
key again), left empty on edit it keeps the saved key, and a saved key is never sent to a
base URL other than the one it was saved with: changing the URL needs the key entered
again (or removed).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from playground import vault
from playground.egress import EgressRefused
from playground.models import CustomEndpoint, Membership
from playground.own_models import check_base_url

MAX_NAME = 80
MAX_BASE_URL = 500
MAX_KEY = 500
MAX_MODELS = 20
MAX_MODEL_ID = 200

MALFORMED_KEY = (
    "Malformed key: a key has at most 500 characters and no spaces or control characters."
)
KEY_AGAIN = "Enter the key again: a key is never shown back."
NOT_YOUR_TEAM = "Share it with one of your teams, or with nobody."
URL_CHANGED = (
    "The base URL changed: enter the key again, or tick “Remove the saved key”. A key is "
    "only ever sent to the base URL it was saved with."
)


def _has_space_or_control(text: str) -> bool:
    return any(c.isspace() or not c.isprintable() for c in text)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


class EndpointForm(forms.Form):
    name = forms.CharField(
        required=False, help_text="Shown in the Model picker before each model id."
    )
    base_url = forms.CharField(
        required=False, help_text="Where the server's /chat/completions lives, e.g. …/v1."
    )
    api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    remove_key = forms.BooleanField(required=False)
    model_ids = forms.CharField(required=False, widget=forms.Textarea)
    team = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": NOT_YOUR_TEAM},
        help_text="Its members pick its models too; calls still go with this key, unseen.",
    )

    def __init__(
        self, *args: Any, owner: Any, endpoint: CustomEndpoint | None = None, **kwargs: Any
    ) -> None:
        if endpoint is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": endpoint.name,
                "base_url": endpoint.base_url,
                "model_ids": "\n".join(endpoint.model_ids),
                "team": str(endpoint.team_id or ""),
            }
        super().__init__(*args, **kwargs)
        self.owner_id = int(owner.pk)
        self.endpoint = endpoint
        # Only the owner's own teams: an endpoint is shared by its owner, with a team they
        # are in.
        teams = Membership.objects.filter(user_id=self.owner_id).values_list(
            "team_id", "team__name"
        )
        field = self.fields["team"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Not shared"), *((str(pk), name) for pk, name in teams)]

    @property
    def key_typed(self) -> bool:
        return bool(self.is_bound and str(self.data.get("api_key", "")).strip())

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if not name:
            raise forms.ValidationError("Give the endpoint a name.")
        if len(name) > MAX_NAME:
            raise forms.ValidationError(f"The name can be at most {MAX_NAME} characters long.")
        if any(not c.isprintable() for c in name):
            raise forms.ValidationError("The name cannot contain control characters.")
        taken = CustomEndpoint.objects.filter(owner_id=self.owner_id, name=name)
        if self.endpoint is not None:
            taken = taken.exclude(pk=self.endpoint.pk)
        if taken.exists():
            raise forms.ValidationError(f"You already have an endpoint named “{name}”.")
        return name

    def clean_base_url(self) -> str:
        url: str = self.cleaned_data["base_url"]
        if not url:
            raise forms.ValidationError(
                "Give the server's base URL, e.g. https://openrouter.ai/api/v1."
            )
        if len(url) > MAX_BASE_URL:
            raise forms.ValidationError(
                f"The base URL can be at most {MAX_BASE_URL} characters long."
            )
        try:
            return check_base_url(url)
        except EgressRefused as refused:
            raise forms.ValidationError(str(refused)) from None

    @sensitive_variables("key")
    def clean_api_key(self) -> str:
        key: str = self.cleaned_data["api_key"]
        if len(key) > MAX_KEY or _has_space_or_control(key):
            raise forms.ValidationError(MALFORMED_KEY + " Enter the key again.")
        return key

    def clean_model_ids(self) -> list[str]:
        ids: list[str] = []
        for line in self.cleaned_data["model_ids"].splitlines():
            model_id = line.strip()
            if not model_id or model_id in ids:
                continue
            if len(model_id) > MAX_MODEL_ID:
                raise forms.ValidationError(
                    f"The model id “{_short(model_id)}” is longer than {MAX_MODEL_ID} characters."
                )
            if _has_space_or_control(model_id):
                raise forms.ValidationError(
                    f"The model id “{_short(model_id)}” contains a space or a control character;"
                    " put one model id on each line."
                )
            ids.append(model_id)
        if not ids:
            raise forms.ValidationError("List at least one model id, one per line.")
        if len(ids) > MAX_MODELS:
            raise forms.ValidationError(
                f"List at most {MAX_MODELS} model ids; there are {len(ids)}."
            )
        return ids

    @sensitive_variables("key")
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        key = cleaned.get("api_key", "")
        endpoint = self.endpoint
        if key and cleaned.get("remove_key"):
            self.add_error("api_key", "Enter a new key or remove the saved one, not both.")
        elif (
            endpoint is not None
            and endpoint.has_key
            and "base_url" in cleaned
            and cleaned["base_url"] != endpoint.base_url
            and not key
            and not cleaned.get("remove_key")
        ):
            self.add_error("api_key", URL_CHANGED)
        if self.errors and self.key_typed and "api_key" not in self.errors:
            self.add_error("api_key", KEY_AGAIN)
        return cleaned

    @sensitive_variables("key")
    def save(self) -> CustomEndpoint | None:
        """The saved endpoint, or None (and an error on the name) when the name was taken
        meanwhile."""
        endpoint = self.endpoint or CustomEndpoint(owner_id=self.owner_id)
        data = self.cleaned_data
        endpoint.name, endpoint.base_url = data["name"], data["base_url"]
        endpoint.model_ids = data["model_ids"]
        endpoint.team_id = int(data["team"]) if data.get("team") else None
        key = data["api_key"]
        if key:
            endpoint.key_ciphertext, endpoint.key_hint = vault.encrypt(key), vault.hint(key)
        elif data["remove_key"]:
            endpoint.key_ciphertext, endpoint.key_hint = "", ""
        try:
            with transaction.atomic():
                endpoint.save()
        except IntegrityError:
            self.add_error("name", f"You already have an endpoint named “{endpoint.name}”.")
            if key:
                self.add_error("api_key", KEY_AGAIN)
            return None
        return endpoint
