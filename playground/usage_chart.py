"""The usage pages' bar chart: spend per day (tokens per day when no answer had a price),
as numbers for the template's inline SVG; no script draws it. Each day of the period has a
slot; a day with answers has a bar, one with none has nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from playground.ledger import DayRow, Period, usd

WIDTH = 640
HEIGHT = 180
LEFT = 8  # room left of the first slot
TOP = 22  # room above the tallest bar for the highest value's label
BOTTOM = 22  # room under the baseline for the days' labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    says: str  # "3 December: $0.0123, 4 answers"


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    bars: list[Bar]
    width: int
    height: int
    baseline: float
    highest: str  # the tallest bar's value, labelled at the top
    first_day: str
    last_day: str


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%B}"


def chart(days: list[DayRow], period: Period) -> Chart | None:
    """The chart of ``days`` (the days with answers) over ``period``; None with no answers."""
    if not days:
        return None
    by_spend = any(d.totals.spend for d in days)
    values: dict[dt.date, Decimal] = {
        d.day: d.totals.spend if by_spend else Decimal(d.totals.tokens) for d in days
    }
    top = max(values.values()) or Decimal(1)
    slots = max(1, len(period.days))
    slot = (WIDTH - LEFT) / slots
    plot = HEIGHT - TOP - BOTTOM
    bars = []
    for index, day in enumerate(period.days):
        row = next((d for d in days if d.day == day), None)
        if row is None:
            continue
        value = values[day]
        height = max(1.0, float(value / top) * plot)
        shown = usd(value) if by_spend else f"{int(value):,} tokens"
        answers = f"{row.totals.answers:,} answer{'s' if row.totals.answers != 1 else ''}"
        bars.append(
            Bar(
                x=round(LEFT + index * slot + slot * 0.15, 2),
                y=round(TOP + plot - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
                says=f"{_day(day)}: {shown}, {answers}",
            )
        )
    what = "Spend in US dollars" if by_spend else "Tokens"
    what_lower = "spend in US dollars" if by_spend else "tokens"
    highest_day = max(values, key=lambda d: values[d])
    highest = usd(top) if by_spend else f"{int(top):,} tokens"
    first, last = period.days[0], period.days[-1]
    return Chart(
        title=f"{what} per day, {period.label.lower()}",
        description=(
            f"Bar chart of {what_lower} per day from {_day(first)} to {_day(last)}: "
            f"{len(bars)} day{'s' if len(bars) != 1 else ''} with answers, the highest "
            f"{highest} on {_day(highest_day)}. Days without answers have no bar. The table "
            "below has the same numbers."
        ),
        bars=bars,
        width=WIDTH,
        height=HEIGHT,
        baseline=HEIGHT - BOTTOM,
        highest=highest,
        first_day=_day(first),
        last_day=_day(last),
    )
