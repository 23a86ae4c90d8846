"""Quotas, the counters that enforce them, the usage ledger and currency rates.

A quota belongs to a person, a team, or the site (the default for every person without one
of their own). Send reserves a turn's worst case on the counters of every quota that
applies, in its transaction; each response, when it ends, settles with what it used
(``playground.quotas``). The ledger has one row per ended response, never changed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from playground.models.catalog import Currency


class QuotaScope(models.TextChoices):
    SITE = "site", "Site default (each person)"
    TEAM = "team", "Team"
    USER = "user", "Person"


class Quota(models.Model):
    scope = models.CharField(max_length=8, choices=QuotaScope.choices, default=QuotaScope.USER)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quota",
    )
    team = models.OneToOneField(
        "playground.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="quota"
    )
    requests_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Answers asked for (one per pane); empty: no limit."
    )
    tokens_per_month = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Input, output and reasoning tokens."
    )
    spend_per_month = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="In US dollars; prices in other currencies are converted at the rates set.",
    )
    concurrent_turns = models.PositiveIntegerField(null=True, blank=True)
    panes_per_turn = models.PositiveIntegerField(null=True, blank=True)
    max_answer_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="The longest answer a pane may ask for."
    )
    allowed_providers = models.JSONField(
        default=list, blank=True, help_text='Provider names, e.g. ["openai", "qwen"]; empty: all.'
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text='Catalog keys, e.g. ["openai:gpt-5"]; empty: all.'
    )
    covers_personal_keys = models.BooleanField(
        default=False,
        help_text="Also cap answers paid with a person's own key (they are always metered).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="user", user__isnull=False, team__isnull=True)
                    | Q(scope="team", team__isnull=False, user__isnull=True)
                    | Q(scope="site", team__isnull=True, user__isnull=True)
                ),
                name="quota_one_owner",
            ),
            models.UniqueConstraint(
                fields=["scope"], condition=Q(scope="site"), name="quota_one_site_default"
            ),
        ]

    def __str__(self) -> str:
        if self.scope == QuotaScope.USER:
            return f"Quota of {self.user}"
        if self.scope == QuotaScope.TEAM:
            return f"Quota of team {self.team}"
        return "Site default quota"


class QuotaCounter(models.Model):
    """What was used and what is reserved, per quota owner and period. ``owner`` is
    "user:<id>" or "team:<id>"; ``period`` a day ("2026-12-04") or a month ("2026-12")."""

    owner = models.CharField(max_length=40)
    period = models.CharField(max_length=10)
    requests = models.PositiveIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    spend = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    reserved_tokens = models.BigIntegerField(default=0)
    reserved_spend = models.DecimalField(max_digits=16, decimal_places=8, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "period"], name="quota_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.period}"


class ExchangeRate(models.Model):
    """How many US dollars one unit of a currency is worth, for spend limits."""

    currency = models.CharField(max_length=3, choices=Currency.choices, unique=True)
    usd_per_unit = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.usd_per_unit} USD"


class UsageEntry(models.Model):
    """One ended response: who, through which key, what it used and cost. Append-only."""

    response = models.OneToOneField(
        "playground.Response", null=True, on_delete=models.SET_NULL, related_name="usage_entry"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        "playground.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    credential = models.ForeignKey(
        "playground.Credential",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    key_scope = models.CharField(max_length=8)
    provider = models.CharField(max_length=50)
    model_key = models.CharField(max_length=300)
    display_name = models.CharField(max_length=300)
    status = models.CharField(max_length=20)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    estimated = models.BooleanField(default=False)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "usage entry"
        verbose_name_plural = "usage ledger"
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_user_time"),
            models.Index(fields=["team", "created_at"], name="usage_team_time"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} for {self.user} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens
