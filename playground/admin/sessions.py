"""Sessions, turns and responses as metadata: titles, models, timings and counts. The
lists show no prompt or answer text beyond a session's title."""

from django.contrib import admin

from playground.models import Pane, Response, Session, Turn


class PaneInline(admin.TabularInline):
    model = Pane
    extra = 0


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "created_at", "updated_at")
    search_fields = ("title", "owner__username")
    inlines = [PaneInline]


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ("__str__", "session", "created_at")
    raw_id_fields = ("session",)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "output_tokens",
        "usage_estimated",
        "ttft_ms",
        "waited_ms",
        "total_ms",
    )
    list_filter = ("status", "model_key")
    raw_id_fields = ("turn", "pane")
