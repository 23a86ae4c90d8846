"""When a session last changed, as the sidebar says it: "just now", "5 min ago", "3 h ago",
"yesterday", "5 Dec", "5 Dec 2025"."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return ""
    now = now or timezone.now()
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h ago"
    local, today = timezone.localtime(when), timezone.localtime(now)
    if (today.date() - local.date()).days == 1:
        return "yesterday"
    day = f"{local.day} {local:%b}"
    return day if local.year == today.year else f"{day} {local.year}"
