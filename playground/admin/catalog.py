"""What people can pick: the catalog (with its Test connection action), the rate limits per
provider, and people's own endpoints (to look at and delete; never their keys)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from playground.models import CatalogEntry, CustomEndpoint, RateLimit
from playground.tasks import ask_connection_check


@admin.register(CatalogEntry)
class CatalogEntryAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "key",
        "provider",
        "model_id",
        "enabled",
        "input_price",
        "output_price",
        "currency",
        "position",
    )
    list_editable = ("enabled", "position")
    list_filter = ("enabled", "provider", "vision", "tools", "reasoning")
    search_fields = ("display_name", "key", "model_id")
    actions = ["test_connection"]
    fieldsets = (
        (None, {"fields": ("key", "display_name", "provider", "model_id", "base_url", "enabled")}),
        ("Limits", {"fields": ("context_window", "max_output_tokens", "concurrency", "position")}),
        ("Capabilities", {"fields": ("vision", "tools", "reasoning", "web_search", "defaults")}),
        ("Price per million tokens", {"fields": ("input_price", "output_price", "currency")}),
    )

    @admin.action(description="Test connection (the cheapest call)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[CatalogEntry]) -> None:
        for entry in queryset[:8]:
            sentence = ask_connection_check(entry.key)
            failed = "failed" in sentence or "no worker" in sentence or "not in the" in sentence
            self.message_user(request, sentence, messages.ERROR if failed else messages.INFO)


@admin.register(RateLimit)
class RateLimitAdmin(admin.ModelAdmin):
    list_display = ("provider", "requests_per_minute", "tokens_per_minute")


@admin.register(CustomEndpoint)
class CustomEndpointAdmin(admin.ModelAdmin):
    """People's own endpoints, to look at and delete. The key's ciphertext is not among the
    fields and nothing is ever decrypted here; only its hint shows."""

    list_display = ("name", "owner", "base_url", "key_hint", "model_ids", "updated_at")
    list_select_related = ("owner",)
    search_fields = ("name", "base_url", "owner__username")
    fields = ("owner", "name", "base_url", "key_hint", "model_ids", "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: CustomEndpoint | None = None
    ) -> bool:
        return False
