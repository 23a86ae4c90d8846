"""Keys in the vault, for admins: the organisation's and teams' keys are added, replaced,
tested, disabled and deleted here (``credential_form`` says how a secret is asked for);
people's personal keys show as metadata only, never changed or deleted by an admin.

No page here holds a secret or a ciphertext: the lists and the change page show the label,
owner, provider, hint (the last four characters), who added it, when it was last used and
how its last test went.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import formats, timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from playground.access import user_id
from playground.admin.credential_form import PART_FIELDS, CredentialForm
from playground.catalog import catalog
from playground.connection_tests import sentences_within
from playground.credentials import base_urls_for
from playground.models import Credential, Scope
from playground.tasks import ask_credential_check

TESTS_AT_ONCE = 8
# How long the action waits for the workers' sentences, for all its tests together.
WAIT_S = 3.0
PERSONAL_SKIPPED = "{n} personal key(s) left alone: a person's own keys are theirs to change."

RECORD = ("hint", "added_by", "created_at", "last_used_at", "test_result", "test_message")


def personal(row: Credential | None) -> bool:
    return row is not None and row.scope == Scope.USER


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = (
        "provider",
        "label",
        "owner",
        "hint",
        "enabled",
        "added_by",
        "last_used_at",
        "test_result",
    )
    list_filter = ("provider", "scope", "enabled", "test_passed", "team")
    list_select_related = ("user", "team", "added_by")
    search_fields = ("label",)
    actions = ["test_connection", "disable", "enable"]
    readonly_fields = RECORD

    # ------------------------------------------------------------------ the page

    def get_fieldsets(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        if personal(obj):  # metadata only: no secret fields, nothing to change
            return [
                (None, {"fields": ("provider", "label", "owner", "base_url", "enabled")}),
                ("Record", {"fields": RECORD}),
            ]
        secret_help = (
            "Enter every part the provider uses."
            if obj is None
            else "Saved parts are never shown. Leave these empty to keep the saved key; to "
            "replace it, enter all its parts again (needed after changing the provider, "
            "owner or base URL)."
        )
        fieldsets: list[Any] = [
            ("Who", {"fields": ("scope", "team")}),
            ("Key", {"fields": ("provider", "label", "base_url", "enabled")}),
            ("Secret (write-only)", {"fields": PART_FIELDS, "description": secret_help}),
        ]
        if obj is not None:
            fieldsets.append(("Record", {"fields": RECORD}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Credential | None = None) -> Any:
        return ("owner", *RECORD) if personal(obj) else RECORD

    def has_change_permission(self, request: HttpRequest, obj: Credential | None = None) -> bool:
        return not personal(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Credential | None = None) -> bool:
        return not personal(obj) and super().has_delete_permission(request, obj)

    @method_decorator(sensitive_post_parameters(*PART_FIELDS))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Credential, form: Any, change: bool) -> None:
        if not change:
            obj.added_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        if obj.base_url not in base_urls_for(obj.provider, catalog().values()):
            self.message_user(
                request,
                f"No catalog model of {obj.provider} is reached at {obj.base_url}, so this "
                "key will not be used until one is.",
                messages.WARNING,
            )

    # ------------------------------------------------------------------ the columns

    @admin.display(description="Owner", ordering="scope")
    def owner(self, row: Credential) -> str:
        if row.scope == Scope.USER:
            return f"Personal: {row.user}"
        if row.scope == Scope.TEAM:
            return f"Team: {row.team}"
        return "Organisation"

    @admin.display(description="Test result", ordering="tested_at")
    def test_result(self, row: Credential) -> str:
        if row.tested_at is None:
            return "not tested"
        when = formats.date_format(timezone.localtime(row.tested_at), "SHORT_DATETIME_FORMAT")
        return f"{'passed' if row.test_passed else 'failed'} ({when})"

    # ------------------------------------------------------------------ the actions

    def _shared(self, request: HttpRequest, rows: QuerySet[Credential]) -> list[Credential]:
        """The selected organisation and team keys; personal ones are said to be skipped."""
        chosen = list(rows)
        shared = [row for row in chosen if not personal(row)]
        if len(shared) < len(chosen):
            skipped = PERSONAL_SKIPPED.format(n=len(chosen) - len(shared))
            self.message_user(request, skipped, messages.WARNING)
        return shared

    @admin.action(description="Test connection (the cheapest call)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        shared = self._shared(request, queryset)
        if len(shared) > TESTS_AT_ONCE:
            self.message_user(
                request,
                f"Only the first {TESTS_AT_ONCE} were tested: select fewer at once.",
                messages.WARNING,
            )
        # Every test is asked first, then a few seconds in all are given to their
        # sentences: an action holds its request thread, and the web's threads serve
        # everyone. A test still running by then records its result on the row.
        me = user_id(request.user)
        rows = shared[:TESTS_AT_ONCE]
        asked = timezone.now()
        started = {row.pk: ask_credential_check(me, row.pk) for row in rows}
        got = sentences_within(me, started, WAIT_S)
        for row in rows:
            sentence = got[row.pk]
            if not sentence:
                self.message_user(
                    request,
                    f"{row.label} ({self.owner(row)}): still testing after {WAIT_S:.0f} s; "
                    f"its Last test shows the result within "
                    f"{settings.PLAYGROUND_TEST_CONNECTION_SECONDS} s (reload this page).",
                    messages.WARNING,
                )
                continue
            row.refresh_from_db(fields=["test_passed", "tested_at"])
            passed = bool(row.test_passed) and row.tested_at is not None and row.tested_at >= asked
            level = messages.SUCCESS if passed else messages.ERROR
            self.message_user(request, f"{row.label} ({self.owner(row)}): {sentence}", level)

    @admin.action(description="Disable (no pane uses them)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description="Enable")
    def enable(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        self._set_enabled(request, queryset, True)

    def _set_enabled(self, request: HttpRequest, rows: QuerySet[Credential], on: bool) -> None:
        changed = 0
        for row in self._shared(request, rows):
            if row.enabled == on:
                continue
            row.enabled = on
            row.save(update_fields=["enabled", "updated_at"])
            self.log_change(request, row, [{"changed": {"fields": ["Enabled"]}}])
            changed += 1
        word = "Enabled" if on else "Disabled"
        self.message_user(request, f"{word} {changed} key(s).", messages.SUCCESS)
