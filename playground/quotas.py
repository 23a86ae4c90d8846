"""Quotas and fair use: one check before anything is enqueued, one settlement per end.

Send plans a turn (:func:`plan`): for each pane, the worst case it may use (the prompt, its
history and the longest answer it may ask for, at its model's price) and which quotas cap
it; a pane paid with the person's own key is capped only where a quota says it covers
personal keys (it is always metered in the ledger). In Send's transaction, :func:`reserve`
locks the counters of every quota that applies, checks every limit against what is used
plus what is reserved plus this turn, and adds the turn to what is reserved; a refusal
rolls the whole Send back, so nothing changes. When a response ends (whoever ends it:
``playground.live.response_end``), :func:`settle` writes its ledger row and moves its
reservation to what it really used, exactly once (the ledger row is unique per response).

Fair use holds with no admin action: concurrent turns per person, Sends per minute per
person (settings), and a maximum run time per pane (the worker).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from playground import shared_caches
from playground.catalog import CatalogModel, ShortCache
from playground.credentials import KeyChoice
from playground.media import media_tokens
from playground.models import (
    ACTIVE_STATUSES,
    ContextPolicy,
    Credential,
    ExchangeRate,
    Quota,
    QuotaCounter,
    QuotaScope,
    Response,
    Scope,
    Session,
    Turn,
    UsageEntry,
)
from playground.usage import estimate_tokens

if TYPE_CHECKING:
    from playground.compose import Compose
    from playground.models import Pane

IMAGE_TOKENS = 1600  # counted per image in the worst case (the largest tiles of most APIs)
MESSAGE_OVERHEAD = 16  # tokens a chat template adds per message, at most


class QuotaRefused(Exception):
    """The turn may not run; the message is the sentence (which limit, what is left, when
    it resets)."""


# --------------------------------------------------------------------------- the rules


def _load_quotas() -> dict[str, Quota]:
    return {_owner_of(q): q for q in Quota.objects.all()}


def _owner_of(quota: Quota) -> str:
    if quota.scope == QuotaScope.USER:
        return f"user:{quota.user_id}"
    if quota.scope == QuotaScope.TEAM:
        return f"team:{quota.team_id}"
    return "site"


# Read by every Send; an admin's change applies at once in the process that saved it
# (signals in apps.py) and within CATALOG's few seconds elsewhere.
_quotas: ShortCache[dict[str, Quota]] = ShortCache(_load_quotas)


def forget_quotas(**_: Any) -> None:
    _quotas.forget()


def _load_rates() -> dict[str, Decimal]:
    return {r.currency: r.usd_per_unit for r in ExchangeRate.objects.all()}


_rates: ShortCache[dict[str, Decimal]] = ShortCache(_load_rates)


def forget_rates(**_: Any) -> None:
    _rates.forget()


def to_usd(amount: Decimal | None, currency: str) -> Decimal | None:
    """``amount`` in US dollars at the rate admins set; None when the price or the rate
    is unknown."""
    if amount is None:
        return None
    if currency in ("", "USD"):
        return amount
    rate = _rates.get().get(currency)
    return None if rate is None else amount * rate


@dataclass(frozen=True)
class Cap:
    """A quota that applies to a turn: whose it is, and the words for it."""

    owner: str  # "user:<id>" or "team:<id>": the counters' owner
    quota: Quota
    whose: str  # "Your" / "Team 'research''s"

    def covers(self, key: KeyChoice) -> bool:
        return key.scope != Scope.USER or self.quota.covers_personal_keys


def caps_for(user_id: int, team_id: int | None, team_name: str = "") -> list[Cap]:
    """The quotas that apply to a person's turn: their own (else the site default) and
    the active team's."""
    quotas = _quotas.get()
    caps = []
    own = quotas.get(f"user:{user_id}") or quotas.get("site")
    if own is not None:
        caps.append(Cap(f"user:{user_id}", own, "Your"))
    if team_id is not None and (team := quotas.get(f"team:{team_id}")) is not None:
        caps.append(Cap(f"team:{team_id}", team, f"Team '{team_name}''s"))
    return caps


# --------------------------------------------------------------------------- the plan


@dataclass
class PaneCost:
    """One pane's worst case: what Send reserves for it."""

    model: CatalogModel
    key: KeyChoice
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None  # None: its price (or its currency's rate) is unknown
    caps: list[Cap] = field(default_factory=list)  # the quotas that cap this pane
    max_tokens: int | None = None  # sent to the provider, when a cap needs the bound

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Plan:
    user_id: int
    team_id: int | None
    caps: list[Cap]
    panes: list[PaneCost]

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.panes)

    @property
    def cost_usd(self) -> Decimal | None:
        costs = [p.cost_usd for p in self.panes if p.cost_usd is not None]
        return None if len(costs) < len(self.panes) else sum(costs, Decimal(0))

    @property
    def cost_known(self) -> Decimal:
        return sum((p.cost_usd or Decimal(0) for p in self.panes), Decimal(0))


def worst_input(
    prompt: str, system: str, history_tokens: int, images: int, tools: str, media: int = 0
) -> int:
    """At most how many tokens a call's input counts: twice the usual estimate of its new
    text (dense text and code take more tokens per character), its history as the
    provider counted it last time, and the images, tools, videos and recordings it carries
    (``media``: their tokens, playground.media.media_tokens)."""
    new = estimate_tokens(prompt) + estimate_tokens(system) + estimate_tokens(tools)
    return 2 * new + history_tokens + images * IMAGE_TOKENS + media + 3 * MESSAGE_OVERHEAD


def answer_limit(model: CatalogModel, params: dict[str, Any], caps: list[Cap]) -> int:
    """The longest answer a pane may give: its Max tokens, else its model's, else the
    site's default; never more than a quota's maximum answer length."""
    asked = params.get("max_tokens")
    limit = int(asked) if asked else model.max_output_tokens or settings.PLAYGROUND_ANSWER_TOKENS
    for cap in caps:
        if cap.quota.max_answer_tokens:
            limit = min(limit, cap.quota.max_answer_tokens)
    return limit


def plan_pane(
    model: CatalogModel,
    key: KeyChoice,
    params: dict[str, Any],
    caps: list[Cap],
    input_tokens: int,
) -> PaneCost:
    """One pane's worst case, or :class:`QuotaRefused` when a quota forbids its model or
    its answer length."""
    capping = [c for c in caps if c.covers(key)]
    for cap in capping:
        allowed = cap.quota.allowed_providers
        if allowed and model.provider not in allowed:
            raise QuotaRefused(
                f"{model.display_name}: {cap.whose.lower()} quota does not allow "
                f"{model.provider_class.display_name} models."
            )
        if cap.quota.allowed_models and model.key not in cap.quota.allowed_models:
            raise QuotaRefused(
                f"{model.display_name}: {cap.whose.lower()} quota does not allow this model."
            )
        longest = cap.quota.max_answer_tokens
        if longest and params.get("max_tokens") and int(params["max_tokens"]) > longest:
            raise QuotaRefused(
                f"{model.display_name}: {cap.whose.lower()} answers are limited to "
                f"{longest:,} tokens; lower Max tokens."
            )
    output = answer_limit(model, params, capping)
    cost = model.cost(input_tokens, output)
    bounded = any(
        c.quota.tokens_per_month or c.quota.spend_per_month or c.quota.max_answer_tokens
        for c in capping
    )
    takes_max = any(p.name == "max_tokens" for p in model.params)
    return PaneCost(
        model=model,
        key=key,
        input_tokens=input_tokens,
        output_tokens=output,
        cost_usd=to_usd(cost, model.currency),
        caps=capping,
        max_tokens=output if bounded and takes_max and not params.get("max_tokens") else None,
    )


def check_panes_per_turn(caps: list[Cap], panes: int) -> None:
    for cap in caps:
        most = cap.quota.panes_per_turn
        if most and panes > most:
            raise QuotaRefused(
                f"{cap.whose} quota allows {most} model{'s' if most != 1 else ''} per turn; "
                f"this turn has {panes}."
            )


def plan_turn(
    user_id: int,
    compose: Compose,
    history: dict[int, int] | None = None,
) -> Plan:
    """The worst case of every pane of a Send, and the quotas that cap them; or
    :class:`QuotaRefused`. ``history``: tokens of each pane's conversation so far, by
    position (the last answer's input plus output, as its provider counted them)."""
    team = compose.team
    caps = caps_for(user_id, team.pk if team else None, team.name if team else "")
    asking = compose.asking()
    check_panes_per_turn(caps, len(asking))
    tools = json.dumps(compose.tools) if compose.tools else ""
    panes = []
    for pane in asking:
        number = compose.panes.index(pane) + 1
        if pane.model is None:
            continue
        tokens = worst_input(
            compose.prompt,
            compose.system_prompt,
            (history or {}).get(pane.position, 0),
            len(compose.images),
            tools,
            media_tokens(compose.media.entries),
        )
        try:
            panes.append(plan_pane(pane.model, pane.key, pane.params, caps, tokens))
        except QuotaRefused as refused:
            raise QuotaRefused(f"Pane {number}: {refused}") from None
    return Plan(user_id, team.pk if team else None, caps, panes)


#: Annotates a Pane with ``history_tokens``: its last answer's input plus output, as its
#: provider counted them (None before its first answer).
HISTORY = {
    "history_tokens": Subquery(
        Response.objects.filter(pane_id=OuterRef("pk"), replaced=False)
        .order_by("-turn__index")
        .annotate(size=Coalesce("input_tokens", 0) + Coalesce("output_tokens", 0))
        .values("size")[:1]
    )
}


def pane_histories(existing: dict[int, Pane], policy: str, positions: list[int]) -> dict[int, int]:
    """Each pane's conversation so far in tokens, for its worst case, by position; ``existing``:
    the session's panes showing, annotated with :data:`HISTORY`. Its own where each model
    keeps its own answers, and for a pane that joins now the largest of the others' (it may
    be given a chosen answer); every pane's together where answers are shared (the "chosen"
    and "all" context policies)."""
    own = {p.position: getattr(p, "history_tokens", 0) or 0 for p in existing.values()}
    if policy != ContextPolicy.OWN:
        return dict.fromkeys(positions, sum(own.values()))
    joining = max(own.values(), default=0)
    return {position: own.get(position, joining) for position in positions}


# --------------------------------------------------------------------------- periods


def day_of(now: dt.datetime) -> str:
    return timezone.localtime(now).strftime("%Y-%m-%d")


def month_of(now: dt.datetime) -> str:
    return timezone.localtime(now).strftime("%Y-%m")


def day_resets(now: dt.datetime) -> dt.datetime:
    local = timezone.localtime(now)
    return (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def month_resets(now: dt.datetime) -> dt.datetime:
    local = timezone.localtime(now)
    days = calendar.monthrange(local.year, local.month)[1]
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first + dt.timedelta(days=days)


def when(moment: dt.datetime, now: dt.datetime) -> str:
    """ "at midnight UTC (in 3 h 12 min)", "on 1 January 2027 (in 27 days)"."""
    left = moment - now
    if left < dt.timedelta(days=1):
        minutes = max(1, int(left.total_seconds() // 60))
        span = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
        return f"at midnight {timezone.get_current_timezone_name()} (in {span})"
    return f"on {moment.day} {moment:%B %Y} (in {left.days + 1} days)"


def money(amount: Decimal) -> str:
    return f"${amount:,.4f}" if amount < 1 else f"${amount:,.2f}"


# --------------------------------------------------------------------------- reserve


@dataclass(frozen=True)
class Reserved:
    """What one pane's response holds on the counters (its fields of Response)."""

    tokens: int
    cost: Decimal
    counters: list[int]


def _counters(owners: Iterable[str], now: dt.datetime) -> dict[tuple[str, str], QuotaCounter]:
    """The day and month counters of ``owners``, locked (PostgreSQL; SQLite's write
    transaction holds the database), made when missing."""
    keys = [(o, p) for o in sorted(set(owners)) for p in (day_of(now), month_of(now))]
    found = _locked_counters(keys)
    if len(found) == len(keys):
        return found
    # A new day or month, or a quota set just now: made once (a parallel Send may make it
    # first) from what the ledger says was used so far, then locked.
    QuotaCounter.objects.bulk_create(
        [_from_ledger(o, p, now) for o, p in keys if (o, p) not in found],
        ignore_conflicts=True,
    )
    return _locked_counters(keys)


def _from_ledger(owner: str, period: str, now: dt.datetime) -> QuotaCounter:
    """A new counter holding what the ledger has for its owner and period (answers paid
    with a person's own key left out, as they are capped only when a quota says so)."""
    kind, _, pk = owner.partition(":")
    rows = UsageEntry.objects.exclude(key_scope=Scope.USER).filter(
        **({"user_id": int(pk)} if kind == "user" else {"team_id": int(pk)})
    )
    local = timezone.localtime(now)
    if len(period) == 10:  # a day
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return QuotaCounter(
            owner=owner, period=period, requests=rows.filter(created_at__gte=start).count()
        )
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = rows.filter(created_at__gte=start).aggregate(
        input=Sum("input_tokens"), output=Sum("output_tokens"), spend=Sum("cost_usd")
    )
    return QuotaCounter(
        owner=owner,
        period=period,
        tokens=(used["input"] or 0) + (used["output"] or 0),
        spend=used["spend"] or Decimal(0),
    )


_QC = QuotaCounter._meta.db_table


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


_COUNTER_COLUMNS: tuple[str, ...] = ("id", "owner", "period", "requests", "tokens", "spend")
_COUNTER_COLUMNS += ("reserved_tokens", "reserved_spend")


def _locked_counters(keys: list[tuple[str, str]]) -> dict[tuple[str, str], QuotaCounter]:
    """The counters of ``keys``, read (and on PostgreSQL locked) in one statement of plain
    SQL: on every Send, the ORM's building of it cost more than the query."""
    owners = sorted({o for o, _ in keys})
    periods = sorted({p for _, p in keys})
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT {', '.join(_COUNTER_COLUMNS)} FROM {_QC} "  # noqa: S608
        f"WHERE owner IN ({', '.join(['%s'] * len(owners))}) "
        f"AND period IN ({', '.join(['%s'] * len(periods))}) ORDER BY owner, period{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*owners, *periods])
        rows = [QuotaCounter(**dict(zip(_COUNTER_COLUMNS, row, strict=True))) for row in cursor]
    for counter in rows:  # SQLite hands decimals back as floats
        counter.spend = _decimal(counter.spend)
        counter.reserved_spend = _decimal(counter.reserved_spend)
    wanted = set(keys)
    return {(c.owner, c.period): c for c in rows if (c.owner, c.period) in wanted}


def _lock_person(user_id: int) -> None:
    """Order a person's parallel Sends (PostgreSQL: their user row; SQLite serializes
    write transactions already)."""
    if connection.features.has_select_for_update:
        from django.contrib.auth import get_user_model

        list(get_user_model().objects.select_for_update().filter(pk=user_id).values("pk"))


def active_turns(**owner: int) -> int:
    """Turns with a pane still queued or streaming, of a person (``user_id=``) or a team
    (``team_id=``)."""
    if "user_id" in owner:
        join, where, value = f"JOIN {_S} s ON s.id = t.session_id", "s.owner_id", owner["user_id"]
    else:
        join, where, value = "", "t.team_id", owner["team_id"]
    sql = (
        f"SELECT COUNT(DISTINCT r.turn_id) FROM {_R} r JOIN {_T} t ON t.id = r.turn_id "  # noqa: S608
        f"{join} WHERE {where} = %s AND r.status IN (%s, %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value, *ACTIVE_STATUSES])
        return int(cursor.fetchone()[0])


_R, _T, _S = Response._meta.db_table, Turn._meta.db_table, Session._meta.db_table


def reserve(plan: Plan, now: dt.datetime | None = None) -> list[Reserved]:
    """Check every limit of every cap against used + reserved + this turn, and reserve it;
    one :class:`Reserved` per pane, in order. Call inside Send's transaction, before the
    turn is saved; :class:`QuotaRefused` rolls it back. Parallel Sends queue on the locks,
    so the limits hold under them."""
    now = now or timezone.now()
    _lock_person(plan.user_id)
    most = settings.PLAYGROUND_FAIR_CONCURRENT_TURNS
    own = next((c for c in plan.caps if c.owner.startswith("user:")), None)
    if own is not None and own.quota.concurrent_turns:
        most = own.quota.concurrent_turns
    running = active_turns(user_id=plan.user_id)
    if most and running >= most:
        raise QuotaRefused(
            f"You have {running} turn{'s' if running != 1 else ''} still answering; at most "
            f"{most} may run at once. Wait for one to end, or stop one."
        )
    capping = [c for c in plan.caps if any(c in p.caps for p in plan.panes)]
    counters = _counters((c.owner for c in capping), now) if capping else {}
    for cap in capping:
        _check(cap, plan, counters, now)
    day, month = day_of(now), month_of(now)
    reserved = []
    for pane in plan.panes:
        ids = [counters[(c.owner, month)].pk for c in pane.caps]
        reserved.append(Reserved(pane.tokens, pane.cost_usd or Decimal(0), ids))
    with connection.cursor() as cursor:
        for cap in capping:
            # The day's requests and the month's reservation, in one statement.
            mine = [p for p in plan.panes if cap in p.caps]
            day_id, month_id = counters[(cap.owner, day)].pk, counters[(cap.owner, month)].pk
            cursor.execute(
                _RESERVE,
                [
                    day_id,
                    len(mine),
                    month_id,
                    sum(p.tokens for p in mine),
                    month_id,
                    sum((p.cost_usd or Decimal(0) for p in mine), Decimal(0)),
                    day_id,
                    month_id,
                ],
            )
    return reserved


_RESERVE = (
    f"UPDATE {_QC} SET "  # noqa: S608
    "requests = requests + CASE WHEN id = %s THEN %s ELSE 0 END, "
    "reserved_tokens = reserved_tokens + CASE WHEN id = %s THEN %s ELSE 0 END, "
    "reserved_spend = reserved_spend + CASE WHEN id = %s THEN %s ELSE 0 END "
    "WHERE id IN (%s, %s)"
)


def check_now(plan: Plan, now: dt.datetime | None = None) -> None:
    """What :func:`reserve` would say of ``plan`` now, read-only (the composer's estimate):
    :class:`QuotaRefused` with the sentence Send would give when a limit would refuse it.
    Locks, reserves and creates nothing; the person's turns at once are left to Send."""
    now = now or timezone.now()
    capping = [c for c in plan.caps if any(c in p.caps for p in plan.panes)]
    if not capping:
        return
    periods = (day_of(now), month_of(now))
    rows = {
        (c.owner, c.period): c
        for c in QuotaCounter.objects.filter(
            owner__in=[cap.owner for cap in capping], period__in=periods
        )
    }
    counters = {
        (cap.owner, p): rows.get((cap.owner, p)) or QuotaCounter(owner=cap.owner, period=p)
        for cap in capping
        for p in periods
    }
    for cap in capping:
        _check(cap, plan, counters, now)


def _check(
    cap: Cap, plan: Plan, counters: dict[tuple[str, str], QuotaCounter], now: dt.datetime
) -> None:
    quota = cap.quota
    mine = [p for p in plan.panes if cap in p.caps]
    day = counters[(cap.owner, day_of(now))]
    month = counters[(cap.owner, month_of(now))]
    if quota.concurrent_turns and cap.owner.startswith("team:"):
        running = active_turns(team_id=int(cap.owner.split(":")[1]))
        if running >= quota.concurrent_turns:
            raise QuotaRefused(
                f"{cap.whose} limit of {quota.concurrent_turns} turns at once is reached "
                f"({running} running); wait for one to end."
            )
    if quota.requests_per_day is not None:
        left = max(0, quota.requests_per_day - day.requests)
        if len(mine) > left:
            raise QuotaRefused(
                f"{cap.whose} limit is {quota.requests_per_day:,} "
                f"answer{'s' if quota.requests_per_day != 1 else ''} a day; {left:,} "
                f"left, this turn asks for {len(mine)}. It resets "
                f"{when(day_resets(now), now)}."
            )
    if quota.tokens_per_month is not None:
        left_tokens = max(0, quota.tokens_per_month - month.tokens - month.reserved_tokens)
        wanted = sum(p.tokens for p in mine)
        if wanted > left_tokens:
            raise QuotaRefused(
                f"{cap.whose} limit is {quota.tokens_per_month:,} tokens a month; "
                f"{left_tokens:,} left, and this turn may use up to {wanted:,}. It resets "
                f"{when(month_resets(now), now)}."
            )
    if quota.spend_per_month is not None:
        left_spend = max(Decimal(0), quota.spend_per_month - month.spend - month.reserved_spend)
        cost = sum((p.cost_usd or Decimal(0) for p in mine), Decimal(0))
        if cost > left_spend:
            raise QuotaRefused(
                f"{cap.whose} spending limit is {money(quota.spend_per_month)} a month; "
                f"{money(left_spend)} left, and this turn may cost up to {money(cost)}. "
                f"It resets {when(month_resets(now), now)}."
            )


# --------------------------------------------------------------------------- left


@dataclass(frozen=True)
class Left:
    """What is left of one cap, for the composer and the usage page."""

    whose: str
    requests: tuple[int, int] | None  # (left, limit)
    tokens: tuple[int, int] | None
    spend: tuple[Decimal, Decimal] | None


def left_of(caps: list[Cap], now: dt.datetime | None = None) -> list[Left]:
    now = now or timezone.now()
    rows = {
        (c.owner, c.period): c
        for c in QuotaCounter.objects.filter(
            owner__in=[cap.owner for cap in caps], period__in=[day_of(now), month_of(now)]
        )
    }
    out = []
    for cap in caps:
        q = cap.quota
        day = rows.get((cap.owner, day_of(now))) or QuotaCounter()
        month = rows.get((cap.owner, month_of(now))) or QuotaCounter()
        out.append(
            Left(
                cap.whose,
                (max(0, q.requests_per_day - day.requests), q.requests_per_day)
                if q.requests_per_day is not None
                else None,
                (
                    max(0, q.tokens_per_month - month.tokens - month.reserved_tokens),
                    q.tokens_per_month,
                )
                if q.tokens_per_month is not None
                else None,
                (
                    max(Decimal(0), q.spend_per_month - month.spend - month.reserved_spend),
                    q.spend_per_month,
                )
                if q.spend_per_month is not None
                else None,
            )
        )
    return out


# --------------------------------------------------------------------------- settle


def settle(response_id: int) -> bool:
    """Write the ended response's ledger row and give back its reservation, less what it
    used; False when it was settled already (exactly once: the row is unique)."""
    row = (
        Response.objects.filter(pk=response_id)
        .select_related("turn__session")
        .only(
            "pk",
            "model_key",
            "display_name",
            "status",
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "usage_estimated",
            "cost",
            "cost_currency",
            "credential_id",
            "key_scope",
            "reserved_tokens",
            "reserved_cost",
            "quota_counters",
            "turn__team_id",
            "turn__session__owner_id",
        )
        .first()
    )
    if row is None:
        return False
    used_tokens = (row.input_tokens or 0) + (row.output_tokens or 0)
    cost_usd = to_usd(row.cost, row.cost_currency)
    provider = _provider_of(row.model_key)
    try:
        with transaction.atomic():
            UsageEntry.objects.create(
                response_id=row.pk,
                user_id=row.turn.session.owner_id,
                team_id=row.turn.team_id,
                credential_id=row.credential_id,
                key_scope=row.key_scope,
                provider=provider,
                model_key=row.model_key,
                display_name=row.display_name,
                status=row.status,
                input_tokens=row.input_tokens or 0,
                output_tokens=row.output_tokens or 0,
                reasoning_tokens=row.reasoning_tokens or 0,
                estimated=row.usage_estimated,
                cost=row.cost,
                currency=row.cost_currency,
                cost_usd=cost_usd,
            )
            if row.quota_counters:
                QuotaCounter.objects.filter(pk__in=row.quota_counters).update(
                    reserved_tokens=F("reserved_tokens") - row.reserved_tokens,
                    reserved_spend=F("reserved_spend") - row.reserved_cost,
                    tokens=F("tokens") + used_tokens,
                    spend=F("spend") + (cost_usd or Decimal(0)),
                )
            if row.credential_id is not None:
                Credential.objects.filter(pk=row.credential_id).update(last_used_at=timezone.now())
    except IntegrityError:
        return False  # settled already
    return True


def _provider_of(model_key: str) -> str:
    from playground.catalog import catalog
    from playground.own_models import PROVIDER, parse_model_key

    if parse_model_key(model_key):
        return PROVIDER
    model = catalog().get(model_key)
    return model.provider if model else model_key.split(":", 1)[0]


# --------------------------------------------------------------------------- fair use


def sends_key(user_id: int, now: float) -> str:
    return f"pg:sends:{user_id}:{int(now // 60)}"


def count_send(client: Any, user_id: int, now: float | None = None) -> str:
    """Count a Send against the person's Sends per minute (a fixed one-minute window in
    Redis, atomic under parallel Sends); the refusal's sentence once over, else "". The
    same round trip reads the shared caches' versions (``playground.shared_caches``).
    A Send refused afterwards for another reason is taken back (:func:`uncount_send`)."""
    most = settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE
    now = time.time() if now is None else now
    key = sends_key(user_id, now)
    with client.pipeline(transaction=False) as pipe:
        if most:
            pipe.incr(key)
            pipe.expire(key, 120)
        pipe.mget(list(shared_caches.VERSIONS.values()))
        replies = pipe.execute()
    shared_caches.observe(replies[-1])
    if not most or replies[0] <= most:
        return ""
    _take_back(client, key)  # a refused Send is not one of the minute's
    wait = 60 - int(now % 60)
    return (
        f"You have sent {most} turns in the last minute, the most one person may; "
        f"send again in {wait} s."
    )


def uncount_send(client: Any, user_id: int, now: float | None = None) -> None:
    """Take back a counted Send that was then refused (a quota, an invalid form)."""
    if settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE:
        _take_back(client, sends_key(user_id, time.time() if now is None else now))


def _take_back(client: Any, key: str) -> None:
    # A count back at zero goes, so a refused Send leaves nothing behind in Redis (one
    # script: a Send counted in between keeps its count).
    client.eval(_TAKE_BACK, 1, key)


_TAKE_BACK = "if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end"
