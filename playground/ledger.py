"""Reading the usage ledger (``UsageEntry``, one row per ended response) for the usage
pages: what a person or a team used over a period, in total, by day, by model and by
member. Read-only; sums are made by the database, a handful of queries per page.

Spend is in US dollars (``cost_usd``); an entry whose price was unknown adds nothing to it
and is counted apart, so a total is never silently short. Tokens count as the quotas count
them: input plus output (reasoning is part of the output, shown on its own too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from playground.models import Scope, UsageEntry
from playground.own_models import PROVIDER as ENDPOINT_PROVIDER
from playground.quotas import money


def usd(amount: Decimal | None) -> str:
    """US dollars as the usage pages and the estimate say them: "$0.00", "$0.50",
    "$0.0123", "$0.00004" (less than a hundredth of a cent), "$4.88", "$1,234.50"."""
    if not amount:
        return "$0.00"
    if amount >= 1:
        return money(amount)
    digits = f"{amount:.8f}" if amount < Decimal("0.0001") else f"{amount:.4f}"
    whole, fraction = digits.split(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


# --------------------------------------------------------------------------- periods

PERIODS = {"month": "This month", "last-month": "Last month", "30-days": "Last 30 days"}
DEFAULT_PERIOD = "month"


@dataclass(frozen=True)
class Period:
    name: str  # one of PERIODS
    label: str
    start: dt.datetime  # local midnight, included
    end: dt.datetime  # excluded
    days: list[dt.date]  # every day of the period up to today, in order


def period_of(name: str | None, now: dt.datetime | None = None) -> Period:
    """The period a page asks for by name; any other value is the default (this month)."""
    name = name if name in PERIODS else DEFAULT_PERIOD
    local = timezone.localtime(now or timezone.now())
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    first = today.replace(day=1)
    if name == "last-month":
        start = (first - dt.timedelta(days=1)).replace(day=1)
        end = first
    elif name == "30-days":
        start = today - dt.timedelta(days=29)
        end = today + dt.timedelta(days=1)
    else:
        start = first
        end = today + dt.timedelta(days=1)
    days = [start.date() + dt.timedelta(days=n) for n in range((end.date() - start.date()).days)]
    return Period(name, PERIODS[name], start, end, days)


def this_month(now: dt.datetime | None = None) -> Period:
    return period_of("month", now)


# --------------------------------------------------------------------------- sums


@dataclass(frozen=True)
class Totals:
    """What some ledger rows add up to."""

    answers: int = 0
    spend: Decimal = Decimal(0)  # US dollars, of the answers whose price is known
    unpriced: int = 0  # answers whose price (or its currency's rate) was unknown
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: int = 0  # answers whose token counts were estimated, not reported

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Totals:
        return cls(
            answers=row["answers"] or 0,
            spend=row["spend"] or Decimal(0),
            unpriced=row["unpriced"] or 0,
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            reasoning_tokens=row["reasoning_tokens"] or 0,
            estimated=row["estimated"] or 0,
        )


def _sums() -> dict[str, Any]:
    return {
        "answers": Count("pk"),
        "spend": Sum("cost_usd"),
        "unpriced": Count("pk", filter=Q(cost_usd__isnull=True)),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "reasoning_tokens": Sum("reasoning_tokens"),
        "estimated": Count("pk", filter=Q(estimated=True)),
    }


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    totals: Totals


@dataclass(frozen=True)
class ModelRow:
    display_name: str
    model_key: str
    paid_by: str  # "your keys", "team keys", "site keys", "site environment", ...
    totals: Totals


@dataclass(frozen=True)
class MemberRow:
    name: str  # the member's user name; "a deleted account" when gone
    totals: Totals


@dataclass(frozen=True)
class Report:
    """A person's or a team's usage over one period."""

    period: Period
    totals: Totals
    by_day: list[DayRow]  # days with answers only, in order
    by_model: list[ModelRow]  # most spent first
    by_member: list[MemberRow]  # a team's only


def rows_of_user(user_id: int) -> QuerySet[UsageEntry]:
    return UsageEntry.objects.filter(user_id=user_id)


def rows_of_team(team_id: int) -> QuerySet[UsageEntry]:
    return UsageEntry.objects.filter(team_id=team_id)


def totals(rows: QuerySet[UsageEntry], period: Period) -> Totals:
    within = rows.filter(created_at__gte=period.start, created_at__lt=period.end)
    return Totals.of(within.aggregate(**_sums()))


def report(rows: QuerySet[UsageEntry], period: Period, *, team: bool = False) -> Report:
    """Sums of ``rows`` over ``period``; per member too for a team's rows."""
    within = rows.filter(created_at__gte=period.start, created_at__lt=period.end).order_by()
    by_day = [
        DayRow(row["day"], Totals.of(row))
        for row in within.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**_sums())
        .order_by("day")
    ]
    by_model = [
        ModelRow(
            row["name"] or row["model_key"],
            row["model_key"],
            paid_by(row["key_scope"], row["provider"], team=team),
            Totals.of(row),
        )
        for row in within.values("model_key", "key_scope", "provider")
        .annotate(name=Max("display_name"), **_sums())
        .order_by("model_key", "key_scope")
    ]
    by_model.sort(key=lambda r: (-r.totals.spend, -r.totals.tokens, r.display_name))
    by_member: list[MemberRow] = []
    if team:
        by_member = [
            MemberRow(row["user__username"] or "a deleted account", Totals.of(row))
            for row in within.values("user_id", "user__username")
            .annotate(**_sums())
            .order_by("user__username")
        ]
        by_member.sort(key=lambda r: (-r.totals.spend, -r.totals.tokens, r.name))
    total = Totals.of(within.aggregate(**_sums()))
    return Report(period, total, by_day, by_model, by_member)


def paid_by(key_scope: str, provider: str, *, team: bool = False) -> str:
    """Which kind of key paid, in the words of the page (a team's page says whose)."""
    if provider == ENDPOINT_PROVIDER and key_scope in (Scope.USER, Scope.TEAM):
        if key_scope == Scope.TEAM:
            return "team endpoints"
        return "members' endpoints" if team else "your endpoints"
    words: dict[str, str] = {
        Scope.USER: "members' own keys" if team else "your keys",
        Scope.TEAM: "team keys",
        Scope.ORG: "site keys",
        Scope.ENV: "site environment",
    }
    return words.get(key_scope, "no key")
