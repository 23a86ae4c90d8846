"""Teams, their members with a role each, and the team's quota on the same page."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from playground.admin.quotas import TeamQuotaInline
from playground.models import Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role")
    extra = 1


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "members", "created_at")
    search_fields = ("name",)
    inlines = [MembershipInline, TeamQuotaInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="Members", ordering="member_count")
    def members(self, team: Team) -> int:
        return getattr(team, "member_count", 0)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", "team")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "team__name")
    fields = ("team", "user", "role")
