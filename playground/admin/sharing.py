"""Sharing in Django admin: the site policy (one row: change it, never add a second or
delete it) and every share link, read-only, with a Revoke action. A link's token is never
stored; of its hash only the first characters are shown, to tell links apart."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from playground.models import ShareLink, SitePolicy


@admin.register(SitePolicy)
class SitePolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "allow_public_links")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the one row is made when first read (SitePolicy.current)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        SitePolicy.current()  # the one row, listed even before anyone read it
        return super().changelist_view(request, extra_context)


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = (
        "session",
        "owner",
        "audience",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_opened_at",
        "token_start",
    )
    list_filter = ("audience", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("session__owner",)
    search_fields = ("session__title", "session__owner__username")
    date_hierarchy = "created_at"
    fields = (
        "session",
        "owner",
        "audience",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_opened_at",
        "token_start",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Owner", ordering="session__owner__username")
    def owner(self, link: ShareLink) -> str:
        return str(link.session.owner.get_username())

    @admin.display(description="Token hash starts")
    def token_start(self, link: ShareLink) -> str:
        return link.token_hash[:8] + "…"

    @admin.action(description="Revoke the selected links")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        now, revoked = timezone.now(), 0
        for link in queryset.filter(revoked_at__isnull=True):
            # One conditional update each: a link revoked meanwhile keeps its time and is
            # neither counted nor logged twice.
            if ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now):
                self.log_change(request, link, "Revoked")
                revoked += 1
        self.message_user(
            request,
            f"Revoked {revoked} link{'' if revoked == 1 else 's'}.",
            messages.SUCCESS,
        )
