"""What people can pick: the catalog (with its Test connection action), the rate limits per
provider, and people's own endpoints (to look at and delete; never their keys)."""

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import formats

from playground.access import user_id
from playground.catalog import normalized_url, operator_base_urls
from playground.connection_tests import last_catalog_tests, sentences_within
from playground.egress import EgressRefused, check_user_base_url
from playground.models import CatalogEntry, CustomEndpoint, RateLimit
from playground.tasks import ask_connection_check

TESTS_AT_ONCE = 8
# How long an action waits for the workers' sentences, for all its tests together.
WAIT_S = 3.0


class CatalogEntryForm(forms.ModelForm):
    """A base URL typed here must reach a public server, as a person's endpoint must
    (LibreChat CVE-2026-31943 class: staff are not the operator): the providers' own URLs,
    the operator's PLAYGROUND_<NAME>_BASE_URL and the local model's URL, and hosts in
    PLAYGROUND_CATALOG_PRIVATE_HOSTS, are accepted as they are."""

    class Meta:
        model = CatalogEntry
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        url = str(data.get("base_url") or "").strip()
        provider = str(data.get("provider") or "")
        if url and normalized_url(url) not in operator_base_urls(provider):
            try:
                check_user_base_url(
                    url,
                    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS,
                    schemes=("http", "https", "ws", "wss"),
                )
            except EgressRefused as refused:
                said = str(refused)
                if "private or local" in said:
                    said = (
                        said.split(";")[0] + "; a catalog entry may point at a private server "
                        "only if the operator lists its host in PLAYGROUND_CATALOG_PRIVATE_HOSTS."
                    )
                self.add_error("base_url", said)
        return data


@admin.register(CatalogEntry)
class CatalogEntryAdmin(admin.ModelAdmin):
    form = CatalogEntryForm
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
        "last_test",
    )
    list_editable = ("enabled", "position")
    list_filter = ("enabled", "provider", "vision", "video", "audio", "tools", "reasoning")
    search_fields = ("display_name", "key", "model_id")
    actions = ["test_connection"]
    fieldsets = (
        (None, {"fields": ("key", "display_name", "provider", "model_id", "base_url", "enabled")}),
        ("Limits", {"fields": ("context_window", "max_output_tokens", "concurrency", "position")}),
        (
            "Capabilities",
            {
                "fields": (
                    "vision",
                    "video",
                    "audio",
                    "tools",
                    "reasoning",
                    "web_search",
                    "defaults",
                )
            },
        ),
        (
            "Price per million tokens",
            {
                "fields": (
                    "input_price",
                    "output_price",
                    "audio_input_price",
                    "video_input_price",
                    "currency",
                )
            },
        ),
    )

    @admin.action(description="Test connection (the cheapest call)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[CatalogEntry]) -> None:
        """Ask a worker to test each entry (the first few), then wait a few seconds in all
        for their sentences: an action holds its request thread, and the web's threads
        serve everyone. A test still running by then shows in the Last test column."""
        entries = list(queryset[:TESTS_AT_ONCE])
        if queryset.count() > TESTS_AT_ONCE:
            self.message_user(
                request,
                f"Only the first {TESTS_AT_ONCE} were tested: select fewer at once.",
                messages.WARNING,
            )
        me = user_id(request.user)
        asked = {entry.key: ask_connection_check(me, entry.key) for entry in entries}
        got = sentences_within(me, asked, WAIT_S)
        for entry in entries:
            sentence = got[entry.key]
            if not sentence:
                self.message_user(
                    request,
                    f"{entry.display_name}: still testing after {WAIT_S:.0f} s; its Last "
                    f"test shows the answer within {settings.PLAYGROUND_TEST_CONNECTION_SECONDS}"
                    " s (reload this page).",
                    messages.WARNING,
                )
                continue
            failed = "failed" in sentence or "No worker" in sentence or "not in the" in sentence
            failed = failed or "could not" in sentence
            self.message_user(request, sentence, messages.ERROR if failed else messages.INFO)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # The Last test of every row on the page, in one round trip, kept on the rows
        # (this admin object serves every request at once).
        tests = last_catalog_tests(e.key for e in changelist.result_list)
        for entry in changelist.result_list:
            entry.last_test_found = tests.get(entry.key)
        return changelist

    @admin.display(description="Last test")
    def last_test(self, entry: CatalogEntry) -> str:
        found = getattr(entry, "last_test_found", None)
        if found is None:
            return "not tested"
        when = datetime.fromtimestamp(found[0], tz=UTC)
        return f"{formats.date_format(when, 'Y-m-d H:i')}: {found[1]}"


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
