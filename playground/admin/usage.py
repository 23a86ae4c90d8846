"""The usage ledger: one row per ended response, written by the settlement and never
changed, so nobody (superusers included) adds, changes or deletes one here. The list says
what the rows its filters select add up to."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse

from playground.models import Scope, UsageEntry


@admin.register(UsageEntry)
class UsageEntryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "team",
        "key",
        "provider",
        "display_name",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "estimated",
        "cost_in_currency",
        "cost_usd",
    )
    list_filter = ("key_scope", "provider", "status", "estimated", "team")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "model_key", "display_name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:  # not a redirect or an error page
            context["totals"] = totals(context["cl"].queryset)
        return response

    @admin.display(description="Key", ordering="key_scope")
    def key(self, entry: UsageEntry) -> str:
        if entry.key_scope in Scope.values:
            return str(Scope(entry.key_scope).label)
        return entry.key_scope or "none"

    @admin.display(description="Cost", ordering="cost")
    def cost_in_currency(self, entry: UsageEntry) -> str:
        return "" if entry.cost is None else f"{entry.cost.normalize():f} {entry.currency}"


def totals(rows: Any) -> dict[str, Any]:
    """What the filtered rows add up to: how many, tokens in and out, cost in US dollars
    (and how many rows had no price, so their cost is not in it)."""
    summed = rows.order_by().aggregate(
        entries=Count("pk"),
        tokens_in=Sum("input_tokens", default=0),
        tokens_out=Sum("output_tokens", default=0),
        tokens_reasoning=Sum("reasoning_tokens", default=0),
        usd=Sum("cost_usd", default=0),
        unpriced=Count("pk", filter=Q(cost_usd__isnull=True)),
    )
    return dict(summed)
