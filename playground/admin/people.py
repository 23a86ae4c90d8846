"""The people's page of Django's own user admin, with their quota inline; everything else
of it as Django has it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from playground.admin.quotas import PersonQuotaInline

User = get_user_model()


class PersonAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, PersonQuotaInline]

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # Adding a person asks for a name and a password first, as Django does.
        return super().get_inline_instances(request, obj) if obj is not None else []


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PersonAdmin)
