"""The composer's "Save as set" box: a name, and the teams the person may share it with."""

from __future__ import annotations

from typing import Any

from django import template

from playground.teams import memberships

register = template.Library()


@register.inclusion_tag("playground/_save_set.html", takes_context=True)
def save_set_box(context: template.Context) -> dict[str, Any]:
    return {"memberships": memberships(context["request"].user)}
