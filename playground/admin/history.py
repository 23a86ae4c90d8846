"""Admin history: every change made through Django admin (Django records each one as a
``LogEntry``), to browse and filter, never to change."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.http import HttpRequest, HttpResponse


@admin.register(LogEntry)
class AdminHistory(admin.ModelAdmin):
    list_display = (
        "action_time",
        "user",
        "content_type",
        "object_repr",
        "action",
        "change",
    )
    list_filter = ("user", "content_type", "action_flag")
    list_select_related = ("user", "content_type")
    search_fields = ("object_repr", "change_message", "user__username")
    date_hierarchy = "action_time"
    fields = (
        "action_time",
        "user",
        "content_type",
        "object_id",
        "object_repr",
        "action",
        "change",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {"title": "Admin history", **(extra_context or {})})

    @admin.display(description="Action", ordering="action_flag")
    def action(self, entry: LogEntry) -> str:
        return {ADDITION: "Added", CHANGE: "Changed", DELETION: "Deleted"}.get(
            entry.action_flag, ""
        )

    @admin.display(description="Change")
    def change(self, entry: LogEntry) -> str:
        return entry.get_change_message()
