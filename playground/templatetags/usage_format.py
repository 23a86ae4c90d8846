"""Numbers as the usage pages and the composer's estimate show them."""

from __future__ import annotations

from decimal import Decimal

from django import template

from playground.ledger import usd as _usd

register = template.Library()


@register.filter
def usd(amount: Decimal | None) -> str:
    """US dollars: "$0.00", "$0.0123", "$4.88"."""
    return _usd(amount)


@register.filter
def number(count: int | None) -> str:
    """A count with thousands separated: "8,192"."""
    return f"{count or 0:,}"
