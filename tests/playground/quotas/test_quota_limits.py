"""Quotas hold under parallel Sends: each Send reserves its turn's worst case on every
quota that applies, in its transaction, so many Sends at once at a nearly spent quota are
let in only while the worst case fits; what is reserved is given back, less what was
used, exactly once when each pane ends."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from django.urls import reverse

from playground import quotas
from playground.live.response_end import close_log_now, end_response
from playground.models import (
    CatalogEntry,
    Credential,
    Quota,
    QuotaCounter,
    Response,
    Status,
    Turn,
    UsageEntry,
)
from playground.redis_sync import redis_client
from tests.playground.helpers import run_turn, send_form

HTMX = {"HTTP_HX_REQUEST": "true"}
PRICED = "echo:priced"


@pytest.fixture
def priced(db: Any) -> CatalogEntry:
    """Echo with a price: $1 in and $2 out per million tokens, answers of at most 1,000."""
    return CatalogEntry.objects.create(
        key=PRICED,
        display_name="Priced Echo",
        provider="echo",
        model_id="echo",
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        max_output_tokens=1000,
    )


@pytest.fixture
def no_fair_use(settings: Any) -> None:
    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 0
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 0


def worst_case(prompt: str = "Hello there") -> tuple[int, Decimal]:
    tokens = quotas.worst_input(prompt, "", 0, 0, "") + 1000
    cost = (Decimal(tokens - 1000) * 1 + Decimal(1000) * 2) / 1_000_000
    return tokens, cost


def send_at_once(user: Any, count: int, panes: Any = ((PRICED, {}),)) -> list[str]:
    """``count`` Sends by ``user`` released together, each on its own thread and
    connection; the bodies of their answers."""
    barrier = threading.Barrier(count)
    bodies: list[str] = [""] * count

    def one(index: int) -> None:
        client = Client()
        client.force_login(user)
        try:
            barrier.wait()
            answer = client.post(reverse("send_new"), send_form(panes=panes), **HTMX)
            bodies[index] = answer.content.decode() + answer.get("HX-Redirect", "")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return bodies


def month_counter(user: Any) -> QuotaCounter:
    from django.utils import timezone

    return QuotaCounter.objects.get(owner=f"user:{user.pk}", period=quotas.month_of(timezone.now()))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
@pytest.mark.parametrize("limit", ["spend", "tokens", "requests"])
def test_parallel_sends_at_a_nearly_spent_quota_never_exceed_it(
    owner: Any, priced: CatalogEntry, limit: str
) -> None:
    """LiteLLM #34732 class: a budget checked before and debited after lets parallel
    requests overspend it; here many Sends at once never take more than the limit."""
    tokens, cost = worst_case()
    fits = 3
    quota = Quota(scope="user", user=owner)
    if limit == "spend":
        quota.spend_per_month = cost * fits + cost / 2
    elif limit == "tokens":
        quota.tokens_per_month = tokens * fits + tokens // 2
    else:
        quota.requests_per_day = fits
    quota.save()

    bodies = send_at_once(owner, 12)

    accepted = [b for b in bodies if "/s/" in b]
    refused = [b for b in bodies if "limit" in b]
    assert len(accepted) == fits, bodies
    assert len(refused) == 12 - fits
    assert Turn.objects.count() == fits
    counter = month_counter(owner)
    if limit == "spend":
        assert counter.reserved_spend == cost * fits <= quota.spend_per_month
    elif limit == "tokens":
        assert counter.reserved_tokens == tokens * fits <= quota.tokens_per_month


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_fair_use", "clean_redis", "worker_context")
async def test_each_pane_settles_once_with_what_it_used_and_gives_the_rest_back(
    owner: Any, priced: CatalogEntry
) -> None:
    tokens, cost = worst_case()
    await sync_to_async(Quota.objects.create)(
        scope="user", user=owner, spend_per_month=cost * 10, tokens_per_month=tokens * 10
    )
    bodies = await sync_to_async(send_at_once)(owner, 4)
    assert sum("/s/" in b for b in bodies) == 4
    turns = await sync_to_async(lambda: list(Turn.objects.values_list("pk", flat=True)))()
    for turn_id in turns:
        await run_turn(turn_id)

    @sync_to_async
    def check() -> None:
        rows = list(Response.objects.all())
        assert {r.status for r in rows} == {Status.DONE}
        ledger = list(UsageEntry.objects.all())
        assert sorted(e.response_id for e in ledger) == sorted(r.pk for r in rows)
        used_tokens = sum(r.input_tokens + r.output_tokens for r in rows)
        used_cost = sum(r.cost for r in rows)
        counter = month_counter(owner)
        assert counter.reserved_tokens == 0
        assert counter.reserved_spend == 0
        assert counter.tokens == used_tokens
        assert counter.spend == used_cost
        assert sum(e.cost_usd for e in ledger) == used_cost
        # Ending it again (a late worker, the watchdog) settles nothing a second time.
        again = end_response(
            rows[0].pk, was=Status.STREAMING, status=Status.INTERRUPTED, close_log=lambda s: None
        )
        assert again is False
        assert quotas.settle(rows[0].pk) is False
        assert UsageEntry.objects.count() == len(rows)
        assert month_counter(owner).tokens == used_tokens

    await check()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
def test_a_pane_stopped_before_it_ran_gives_its_whole_reservation_back(
    owner: Any, owner_client: Any, priced: CatalogEntry
) -> None:
    tokens, cost = worst_case()
    Quota.objects.create(scope="user", user=owner, spend_per_month=cost * 2)
    owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})]), **HTMX)
    response = Response.objects.get()
    assert month_counter(owner).reserved_spend == cost

    ended = end_response(
        response.pk,
        was=Status.PENDING,
        status=Status.STOPPED,
        close_log=close_log_now(redis_client(), response.pk, 1),
    )

    assert ended
    counter = month_counter(owner)
    assert (counter.reserved_spend, counter.spend, counter.reserved_tokens) == (0, 0, 0)
    entry = UsageEntry.objects.get()
    assert (entry.status, entry.user_id, entry.output_tokens) == (Status.STOPPED, owner.pk, 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
def test_a_refused_turn_names_the_limit_what_is_left_and_when_it_resets_and_changes_nothing(
    owner: Any, owner_client: Any, priced: CatalogEntry
) -> None:
    tokens, cost = worst_case()
    Quota.objects.create(scope="user", user=owner, spend_per_month=cost * Decimal("1.5"))
    first = owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})]), **HTMX)
    assert "HX-Redirect" in first
    before = (Turn.objects.count(), Response.objects.count(), month_counter(owner).reserved_spend)

    second = owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})]), **HTMX)

    body = second.content.decode()
    assert second["HX-Retarget"] == "#compose-errors"  # the prompt stays in the box
    assert "Your spending limit is $0.0031 a month; $0.0010 left" in body
    assert "It resets on 1 " in body
    after = (Turn.objects.count(), Response.objects.count(), month_counter(owner).reserved_spend)
    assert after == before


@pytest.mark.django_db
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
def test_the_site_default_applies_to_each_person_without_a_quota_of_their_own(
    owner: Any, owner_client: Any, outsider: Any, priced: CatalogEntry
) -> None:
    Quota.objects.create(scope="site", requests_per_day=1)
    Quota.objects.create(scope="user", user=outsider, requests_per_day=5)
    assert "HX-Redirect" in owner_client.post(reverse("send_new"), send_form(), **HTMX)
    refused = owner_client.post(reverse("send_new"), send_form(), **HTMX).content.decode()
    assert "Your limit is 1 answer a day; 0 left, this turn asks for 1." in refused
    other = Client()
    other.force_login(outsider)
    assert "HX-Redirect" in other.post(reverse("send_new"), send_form(), **HTMX)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
def test_quota_rules_on_models_panes_and_answer_length(
    owner: Any, owner_client: Any, priced: CatalogEntry
) -> None:
    Quota.objects.create(
        scope="user",
        user=owner,
        allowed_models=[PRICED],
        panes_per_turn=2,
        max_answer_tokens=100,
    )

    def refused(panes: Any) -> str:
        answer = owner_client.post(reverse("send_new"), send_form(panes=panes), **HTMX)
        assert "HX-Redirect" not in answer
        return answer.content.decode()

    assert "Echo: your quota does not allow this model." in refused([("echo", {})])
    assert "Your quota allows 2 models per turn; this turn has 3." in refused([(PRICED, {})] * 3)
    assert "your answers are limited to 100 tokens; lower Max tokens." in refused(
        [(PRICED, {"max_tokens": 500})]
    )
    assert Turn.objects.count() == 0
    # Without Max tokens, the pane is sent with the quota's bound.
    owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})]), **HTMX)
    assert Response.objects.get().params == {"max_tokens": 100}


@pytest.mark.django_db
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
def test_personal_keys_are_metered_but_capped_only_when_the_quota_says_so(
    owner: Any, owner_client: Any, settings: Any
) -> None:
    from playground.credentials import seal_parts

    settings.PLAYGROUND_PROVIDER_KEYS = {}
    key = Credential(
        scope="user",
        user=owner,
        provider="openai",
        label="mine",
        base_url="https://api.openai.com/v1",
    )
    seal_parts(key, {"api_key": "sk-personal-0123456789"})
    key.save()
    quota = Quota.objects.create(scope="user", user=owner, requests_per_day=0)

    allowed = owner_client.post(
        reverse("send_new"), send_form(panes=[("openai:gpt-4.1-mini", {})]), **HTMX
    )
    assert "HX-Redirect" in allowed, allowed.content
    response = Response.objects.get()
    assert (response.key_scope, response.credential_id, response.quota_counters) == (
        "user",
        key.pk,
        [],
    )
    assert response.key_label == "your key 'mine'"

    quota.covers_personal_keys = True
    quota.save()
    refused = owner_client.post(
        reverse("send_new"), send_form(panes=[("openai:gpt-4.1-mini", {})]), **HTMX
    )
    assert "Your limit is 0 answers a day" in refused.content.decode()


@pytest.mark.django_db
@pytest.mark.usefixtures("no_fair_use", "clean_redis")
def test_a_quota_set_mid_month_counts_what_the_ledger_already_has(
    owner: Any, owner_client: Any, priced: CatalogEntry
) -> None:
    # Two answers before any quota existed: no counter, only the ledger.
    for _ in range(2):
        owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})]), **HTMX)
    for response in Response.objects.all():
        end_response(
            response.pk,
            was=Status.PENDING,
            status=Status.STOPPED,
            close_log=lambda s: None,
            input_tokens=5,
            output_tokens=7,
            cost=Decimal("0.25"),
            cost_currency="USD",
        )
    assert not QuotaCounter.objects.exists()
    Quota.objects.create(scope="user", user=owner, requests_per_day=3, spend_per_month=1)

    answer = owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})] * 2), **HTMX)

    assert "Your limit is 3 answers a day; 1 left, this turn asks for 2." in answer.content.decode()
    one = owner_client.post(reverse("send_new"), send_form(panes=[(PRICED, {})]), **HTMX)
    assert "HX-Redirect" in one
    counter = month_counter(owner)
    assert (counter.tokens, counter.spend) == (24, Decimal("0.5"))
