"""Quotas (the site default, a team's, a person's), the exchange rates spend limits convert
with, and the counters that enforce them (read-only: Send and the settlement write them).

A quota's own page has four parts: who it is for, its limits, what it allows, and whether
it also caps answers paid with a person's own key. Team and person pages carry the same
quota inline (``TeamQuotaInline``, ``PersonQuotaInline``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from playground.admin.quota_forms import (
    ALLOWED,
    LIMITS,
    PERSONAL_KEYS,
    PersonQuotaForm,
    QuotaForm,
    TeamQuotaForm,
)
from playground.models import ExchangeRate, Quota, QuotaCounter, Team

QUOTA_FIELDSETS: Any = (
    ("Limits", {"fields": LIMITS, "description": "Empty: no limit."}),
    ("Allowed", {"fields": ALLOWED}),
    ("Personal keys", {"fields": PERSONAL_KEYS}),
)


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    form = QuotaForm
    list_display = (
        "__str__",
        "scope",
        "requests_per_day",
        "tokens_per_month",
        "spend_per_month",
        "concurrent_turns",
        "covers_personal_keys",
        "updated_at",
    )
    list_filter = ("scope", "covers_personal_keys")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "team__name")
    fieldsets = (
        (
            "Who",
            {
                "fields": ("scope", "user", "team"),
                "description": "The site default applies to each person without a quota "
                "of their own; a team's applies to the turns sent in that team, on top of "
                "the person's.",
            },
        ),
        *QUOTA_FIELDSETS,
    )


class TeamQuotaInline(admin.StackedInline):
    model = Quota
    form = TeamQuotaForm
    fk_name = "team"
    max_num = 1
    extra = 1
    can_delete = True
    fieldsets = QUOTA_FIELDSETS
    verbose_name = "team quota"


class PersonQuotaInline(admin.StackedInline):
    model = Quota
    form = PersonQuotaForm
    fk_name = "user"
    max_num = 1
    extra = 1
    can_delete = True
    fieldsets = QUOTA_FIELDSETS
    verbose_name = "personal quota (else the site default applies)"


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("currency", "usd_per_unit", "updated_at")
    fields = ("currency", "usd_per_unit")


@admin.register(QuotaCounter)
class QuotaCounterAdmin(admin.ModelAdmin):
    """What each quota owner used and holds reserved, per day and per month."""

    list_display = (
        "whose",
        "period",
        "requests",
        "tokens",
        "spend",
        "reserved_tokens",
        "reserved_spend",
    )
    list_filter = ("period",)
    search_fields = ("owner", "period")
    ordering = ("-period", "owner")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        name_owners(changelist.result_list)
        return changelist

    @admin.display(description="Owner", ordering="owner")
    def whose(self, counter: QuotaCounter) -> str:
        return getattr(counter, "owner_name", counter.owner)


def name_owners(counters: Any) -> None:
    """Give each counter an ``owner_name``: "user:3" -> "alice (person)", "team:2" ->
    "research (team)"; two queries for the whole page."""
    ids: dict[str, set[int]] = {"user": set(), "team": set()}
    for counter in counters:
        kind, _, pk = counter.owner.partition(":")
        if kind in ids and pk.isdigit():
            ids[kind].add(int(pk))
    people = get_user_model().objects.in_bulk(ids["user"])
    teams = Team.objects.in_bulk(ids["team"])
    for counter in counters:
        kind, _, pk = counter.owner.partition(":")
        pk_number = int(pk) if pk.isdigit() else 0
        if kind == "user" and pk_number in people:
            counter.owner_name = f"{people[pk_number]} (person)"
        elif kind == "team" and pk_number in teams:
            counter.owner_name = f"{teams[pk_number]} (team)"
