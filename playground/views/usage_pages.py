"""Usage: what a person used, from the ledger, against their limits (Usage); the same for a
team, per member too, for its owners and admins (Team usage). Read-only pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from playground import ledger, quotas
from playground.access import team_for_manager, user_id
from playground.ledger import usd
from playground.models import Team, UsageEntry
from playground.quotas import Cap, Left
from playground.teams import active_team, memberships
from playground.usage_chart import chart

TEMPLATE = "playground/usage.html"


@dataclass(frozen=True)
class Limits:
    """One quota that applies, as the usage page says it."""

    whose: str  # "Your" / "Team 'research''s"
    used: list[str]  # "$1.23 of $5.00 this month, resets on 1 January 2027 (in 27 days)"
    rules: list[str] = field(default_factory=list)  # "at most 3 models per turn", ...


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def limits_of(caps: list[Cap], lefts: list[Left], now: dt.datetime) -> list[Limits]:
    """What each cap allows and how much of it is used (or held by answers still running),
    as the counters that enforce it say."""
    day = quotas.when(quotas.day_resets(now), now)
    month = quotas.when(quotas.month_resets(now), now)
    out = []
    for cap, left in zip(caps, lefts, strict=True):
        used = []
        if left.spend is not None:
            spent = max(Decimal(0), left.spend[1] - left.spend[0])
            used.append(f"{usd(spent)} of {usd(left.spend[1])} this month, resets {month}")
        if left.requests is not None:
            count = left.requests[1] - left.requests[0]
            used.append(f"{count:,} of {_plural(left.requests[1], 'answer')} today, resets {day}")
        if left.tokens is not None:
            count = left.tokens[1] - left.tokens[0]
            used.append(f"{count:,} of {left.tokens[1]:,} tokens this month, resets {month}")
        out.append(Limits(cap.whose, used, _rules(cap)))
    return out


def _rules(cap: Cap) -> list[str]:
    q = cap.quota
    rules = []
    if q.panes_per_turn:
        rules.append(f"at most {_plural(q.panes_per_turn, 'model')} per turn")
    if q.max_answer_tokens:
        rules.append(f"answers of at most {q.max_answer_tokens:,} tokens")
    if q.concurrent_turns and cap.owner.startswith("team:"):
        rules.append(f"at most {_plural(q.concurrent_turns, 'turn')} at once for the team")
    if q.allowed_providers:
        rules.append(f"only models of {', '.join(q.allowed_providers)}")
    if q.allowed_models:
        rules.append(f"only the models {', '.join(q.allowed_models)}")
    if not q.covers_personal_keys:
        rules.append("answers paid with a person's own key are counted here but not capped")
    return rules


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return _plural(seconds // 3600, "hour")
    if seconds % 60 == 0:
        return _plural(seconds // 60, "minute")
    return _plural(seconds, "second")


def fair_use(caps: list[Cap]) -> list[str]:
    """The limits that hold with no quota at all (a person's own quota may set turns at
    once); 0 turns one off."""
    turns = settings.PLAYGROUND_FAIR_CONCURRENT_TURNS
    own = next((c for c in caps if c.owner.startswith("user:")), None)
    if own is not None and own.quota.concurrent_turns:
        turns = own.quota.concurrent_turns
    sends = settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE
    seconds = settings.PLAYGROUND_PANE_MAX_SECONDS
    out = []
    if turns:
        out.append(f"{_plural(turns, 'turn')} answering at once")
    if sends:
        out.append(f"{_plural(sends, 'Send')} a minute")
    if seconds:
        out.append(f"{_duration(seconds)} per answer")
    return out


def _report_context(
    request: HttpRequest, rows: QuerySet[UsageEntry], *, team: bool
) -> dict[str, object]:
    """The period asked for (any other value: this month), its sums, chart, and this
    month's sums for the limits."""
    period = ledger.period_of(request.GET.get("period"))
    report = ledger.report(rows, period, team=team)
    return {
        "report": report,
        "chart": chart(report.by_day, period),
        "periods": ledger.PERIODS,
        "month": ledger.totals(rows, ledger.this_month()),
    }


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    """A person's usage: everything they asked for, whoever's key paid."""
    uid = user_id(request.user)
    now = timezone.now()
    team = active_team(request.user)
    caps = quotas.caps_for(uid, team.pk if team else None, team.name if team else "")
    context = _report_context(request, ledger.rows_of_user(uid), team=False)
    context |= {
        "team": None,
        "limits": limits_of(caps, quotas.left_of(caps, now), now),
        "fair_use": fair_use(caps),
        "managed_teams": [m.team for m in memberships(request.user) if m.manages],
    }
    return render(request, TEMPLATE, context)


@login_required
@require_GET
def team_usage_page(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's usage (the answers asked for while it was active), for its owners and
    admins; anyone else is told it is missing."""
    team: Team = team_for_manager(request.user, team_id).team
    now = timezone.now()
    caps = [
        c
        for c in quotas.caps_for(user_id(request.user), team.pk, team.name)
        if c.owner == f"team:{team.pk}"
    ]
    context = _report_context(request, ledger.rows_of_team(team.pk), team=True)
    context |= {
        "team": team,
        "limits": limits_of(caps, quotas.left_of(caps, now), now),
        "fair_use": [],
        "managed_teams": [],
    }
    return render(request, TEMPLATE, context)
