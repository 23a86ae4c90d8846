"""The sidebar's team picker: which team the person works in, and the others they may pick."""

from __future__ import annotations

from typing import Any

from django import template

from playground.teams import active_team, memberships

register = template.Library()


@register.inclusion_tag("playground/_team_picker.html", takes_context=True)
def team_picker(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    return {
        "memberships": memberships(request.user),
        "active": active_team(request.user),
        "next_url": request.get_full_path(),
    }
