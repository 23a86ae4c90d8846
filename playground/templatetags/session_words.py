"""The sidebar's sessions as words: when a session last changed ("just now", "5 min ago",
"3 h ago", "yesterday", "5 Dec", "5 Dec 2025"), and a search result's marked words."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

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


@register.filter
def marked(pieces: list[tuple[str, bool]]) -> SafeString:
    """A search result's title or snippet: every piece escaped, the words searched for in
    our own <mark> tags, and no other markup (a filter rather than a loop in the template:
    a page of results holds hundreds of pieces)."""
    return mark_safe(  # noqa: S308 (every piece is escaped here)
        "".join(f"<mark>{escape(text)}</mark>" if hit else escape(text) for text, hit in pieces)
    )
