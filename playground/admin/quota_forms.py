"""The forms that set a quota: on its own page, and inline on a team's or a person's page.

Each bad value gets a sentence and nothing is saved: a negative spend, a quota whose
"who" does not fit its kind, a provider or a catalog model that does not exist.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms

from playground.models import CatalogEntry, Quota, QuotaScope
from providers.registry import PROVIDERS

LIMITS = (
    "requests_per_day",
    "tokens_per_month",
    "spend_per_month",
    "concurrent_turns",
    "panes_per_turn",
    "max_answer_tokens",
)
ALLOWED = ("allowed_providers", "allowed_models")
PERSONAL_KEYS = ("covers_personal_keys",)


class NameListField(forms.CharField):
    """A list of names typed as "openai, qwen" (a JSON list is read too); empty: []."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return [str(v) for v in value]
        text = str(value or "").strip()
        if text.startswith("["):
            try:
                loaded = json.loads(text)
            except ValueError:
                raise forms.ValidationError(
                    "Write the names separated by commas, e.g. openai, qwen."
                ) from None
            if not isinstance(loaded, list):
                raise forms.ValidationError("Write the names separated by commas.")
            return [str(v).strip() for v in loaded if str(v).strip()]
        return [name for name in re.split(r"[,\s]+", text) if name]


class QuotaLimitsForm(forms.ModelForm):
    """The limits and what is allowed; who the quota belongs to is set by a subclass or by
    the page it is inline on."""

    allowed_providers = NameListField(
        required=False,
        initial=list,
        help_text="Provider names separated by commas, e.g. openai, qwen. Empty: all.",
    )
    allowed_models = NameListField(
        required=False,
        initial=list,
        help_text="Catalog keys separated by commas, e.g. openai:gpt-5, echo. Empty: all.",
    )

    class Meta:
        model = Quota
        fields = [*LIMITS, *ALLOWED, *PERSONAL_KEYS]

    def clean_spend_per_month(self) -> Any:
        spend = self.cleaned_data.get("spend_per_month")
        if spend is not None and spend < 0:
            raise forms.ValidationError(
                "A spend limit cannot be negative: enter 0 to allow no spending, or leave it "
                "empty for no limit."
            )
        return spend

    def clean_allowed_providers(self) -> list[str]:
        names: list[str] = self.cleaned_data.get("allowed_providers") or []
        unknown = [n for n in names if n not in PROVIDERS]
        if unknown:
            raise forms.ValidationError(
                f"There is no provider named '{unknown[0]}'; the providers are: "
                f"{', '.join(sorted(PROVIDERS))}."
            )
        return names

    def clean_allowed_models(self) -> list[str]:
        keys: list[str] = self.cleaned_data.get("allowed_models") or []
        known = set(CatalogEntry.objects.filter(key__in=keys).values_list("key", flat=True))
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise forms.ValidationError(
                f"There is no catalog model with the key '{unknown[0]}' (see Catalog "
                "entries for the keys)."
            )
        return keys


class QuotaForm(QuotaLimitsForm):
    """A quota on its own page: the site default, a team's or a person's."""

    class Meta(QuotaLimitsForm.Meta):
        fields = ["scope", "user", "team", *LIMITS, *ALLOWED, *PERSONAL_KEYS]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        scope, user, team = data.get("scope"), data.get("user"), data.get("team")
        if scope == QuotaScope.SITE:
            if user is not None or team is not None:
                self.add_error(
                    "scope",
                    "The site default is everyone's: clear the person and the team, or "
                    "choose Person or Team.",
                )
            taken = Quota.objects.filter(scope=QuotaScope.SITE).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error(
                    "scope", "There is already a site default quota: change that one instead."
                )
        elif scope == QuotaScope.TEAM:
            if team is None:
                self.add_error("team", "Choose the team this quota is for.")
            if user is not None:
                self.add_error("user", "A team's quota names no person: clear it.")
        elif scope == QuotaScope.USER:
            if user is None:
                self.add_error("user", "Choose the person this quota is for.")
            if team is not None:
                self.add_error("team", "A person's quota names no team: clear it.")
        return data


class TeamQuotaForm(QuotaLimitsForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.scope = QuotaScope.TEAM


class PersonQuotaForm(QuotaLimitsForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.scope = QuotaScope.USER
