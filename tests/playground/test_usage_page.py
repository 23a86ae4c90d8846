"""Usage (/usage/) and Team usage (/teams/<id>/usage/): the numbers come from the ledger rows
of the person (or the team) only, against their limits; who may see a team's."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.models import Membership, Quota, QuotaCounter, Team, UsageEntry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 15, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """Every page, and every row saved, at 15 December 2026, noon UTC."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def fair_use(settings: Any) -> None:
    settings.PLAYGROUND_FAIR_CONCURRENT_TURNS = 4
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 30
    settings.PLAYGROUND_PANE_MAX_SECONDS = 900


@pytest.fixture
def team(owner: Any, django_user_model: Any) -> Team:
    """Team research: alice owns it, bob is an admin, carol a member."""
    research = Team.objects.create(name="research")
    Membership.objects.create(team=research, user=owner, role="owner")
    bob = django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)
    carol = django_user_model.objects.create_user("carol", "carol@example.com", PASSWORD)
    Membership.objects.create(team=research, user=bob, role="admin")
    Membership.objects.create(team=research, user=carol, role="member")
    return research


def login(client: Any, username: str) -> Any:
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=username))
    return client


def entry(user: Any, at: dt.datetime, **fields: Any) -> UsageEntry:
    """A ledger row as settle writes it, made at ``at``."""
    values: dict[str, Any] = {
        "key_scope": "user",
        "provider": "openai",
        "model_key": "openai:gpt-5",
        "display_name": "OpenAI · GPT-5",
        "status": "done",
        **fields,
    }
    row = UsageEntry.objects.create(user=user, **values)
    UsageEntry.objects.filter(pk=row.pk).update(created_at=at)
    return row


def text(response: Any) -> str:
    """The page as read: tags kept, entities decoded, runs of white space as one."""
    return " ".join(html.unescape(response.content.decode()).split())


def table(page: str, table_id: str) -> list[list[str]]:
    """The body rows of one table, each as its cells' text."""
    match = re.search(rf'<table [^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.DOTALL)
    assert match, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.DOTALL)
    cells = r"<t[hd][^>]*>(.*?)</t[hd]>"
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(cells, r)] for r in rows]


@pytest.fixture
def ledger(owner: Any, outsider: Any, clock: dt.datetime) -> None:
    """Alice's answers: two of GPT-5 on 3 December (her key, then the site's), one of Echo
    on 14 December (estimated, price unknown), one on 20 November; Mallory's one."""
    entry(
        owner,
        dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC),
        input_tokens=1000,
        output_tokens=500,
        reasoning_tokens=200,
        cost=Decimal("0.0125"),
        currency="USD",
        cost_usd=Decimal("0.0125"),
    )
    entry(
        owner,
        dt.datetime(2026, 12, 3, 11, tzinfo=dt.UTC),
        key_scope="org",
        input_tokens=100,
        output_tokens=50,
        cost=Decimal("0.0025"),
        currency="USD",
        cost_usd=Decimal("0.0025"),
    )
    entry(
        owner,
        dt.datetime(2026, 12, 14, 9, tzinfo=dt.UTC),
        key_scope="",
        provider="echo",
        model_key="echo",
        display_name="Echo",
        input_tokens=10,
        output_tokens=20,
        estimated=True,
    )
    entry(
        owner,
        dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC),
        cost_usd=Decimal("1"),
        input_tokens=7,
        output_tokens=7,
    )
    entry(
        outsider,
        dt.datetime(2026, 12, 10, 9, tzinfo=dt.UTC),
        display_name="Mallory's model",
        cost_usd=Decimal("9.99"),
        input_tokens=999_999,
    )


# --------------------------------------------------------------------------- who sees what


def test_anonymous_is_sent_to_sign_in(client: Any, team: Team) -> None:
    for url in (reverse("usage"), reverse("team_usage", args=[team.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_team_usage_is_for_its_owners_and_admins(client: Any, team: Team, outsider: Any) -> None:
    url = reverse("team_usage", args=[team.pk])
    assert login(client, "alice").get(url).status_code == 200
    assert login(client, "bob").get(url).status_code == 200
    assert login(client, "carol").get(url).status_code == 404  # a member, not a manager
    assert login(client, "mallory").get(url).status_code == 404
    assert login(client, "alice").get(reverse("team_usage", args=[team.pk + 99])).status_code == 404


def test_the_playground_links_to_usage(owner_client: Any) -> None:
    page = owner_client.get(reverse("home")).content.decode()
    assert f'<a href="{reverse("usage")}">Usage</a>' in page


def test_a_manager_finds_the_teams_usage_from_their_own(owner_client: Any, team: Team) -> None:
    page = owner_client.get(reverse("usage")).content.decode()
    assert f'href="{reverse("team_usage", args=[team.pk])}"' in page


def test_a_member_gets_no_link_to_the_teams_usage(client: Any, team: Team) -> None:
    page = login(client, "carol").get(reverse("usage")).content.decode()
    assert reverse("team_usage", args=[team.pk]) not in page


# --------------------------------------------------------------------------- the numbers


@pytest.mark.usefixtures("ledger")
def test_this_months_spend_tokens_and_answers(owner_client: Any) -> None:
    page = text(owner_client.get(reverse("usage")))
    summary = page[page.index('id="month-summary"') : page.index("</dl>")]
    assert (
        'Spend</dt> <dd>$0.015 <span class="flag">+ 1 answer with price unknown</span></dd>'
    ) in summary
    assert "Answers</dt> <dd>3</dd>" in summary
    assert (
        "Tokens</dt> <dd>1,110 in · 570 out · 200 reasoning "
        '<span class="flag">estimated for 1 answer</span></dd>'
    ) in summary


@pytest.mark.usefixtures("ledger")
def test_by_day_and_by_model(owner_client: Any) -> None:
    page = text(owner_client.get(reverse("usage")))
    assert table(page, "by-day") == [
        ["Thu 3 December", "2", "$0.015", "1,100", "550", "200"],
        ["Mon 14 December", "1", "$0.00 + 1 price unknown", "10", "20 estimated", "0"],
    ]
    assert table(page, "by-model") == [
        ["OpenAI · GPT-5", "your keys", "1", "$0.0125", "1,000", "500", "200"],
        ["OpenAI · GPT-5", "site keys", "1", "$0.0025", "100", "50", "0"],
        ["Echo", "no key", "1", "$0.00 + 1 price unknown", "10", "20 estimated", "0"],
    ]


@pytest.mark.usefixtures("ledger")
def test_another_persons_rows_never_appear(owner_client: Any) -> None:
    for period in ("month", "last-month", "30-days"):
        page = text(owner_client.get(reverse("usage"), {"period": period}))
        assert "Mallory" not in page
        assert "9.99" not in page
        assert "999,999" not in page


def test_each_person_sees_their_own_answers_only(
    owner: Any, team: Team, client: Any, clock: dt.datetime
) -> None:
    from django.contrib.auth import get_user_model

    bob = get_user_model().objects.get(username="bob")
    day = dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)
    entry(owner, day, team=team, cost_usd=Decimal("0.5"), display_name="Alice's pick")
    entry(bob, day, team=team, cost_usd=Decimal("0.25"), display_name="Bob's pick")

    bobs = text(login(client, "bob").get(reverse("usage")))
    assert "Spend</dt> <dd>$0.25</dd>" in bobs
    assert "Bob's pick" in bobs and "Alice's pick" not in bobs
    carols = text(login(client, "carol").get(reverse("usage")))
    assert "Spend</dt> <dd>$0.00</dd>" in carols
    assert "pick" not in carols


@pytest.mark.usefixtures("ledger")
def test_the_chart_has_one_bar_per_day_with_answers(owner_client: Any) -> None:
    page = text(owner_client.get(reverse("usage")))
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'role="img" aria-labelledby="chart-title chart-desc"' in svg
    assert '<title id="chart-title">Spend in US dollars per day, this month</title>' in svg
    assert "<desc id=" in svg
    bars = re.findall(r'<rect class="bar"[^>]*><title>(.*?)</title></rect>', svg)
    assert bars == ["3 December: $0.015, 2 answers", "14 December: $0.00, 1 answer"]
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', svg)]
    assert heights[0] > heights[1]  # the tallest bar is the day that spent most


def test_the_chart_shows_tokens_when_no_answer_had_a_price(
    owner: Any, owner_client: Any, clock: dt.datetime
) -> None:
    entry(owner, clock - dt.timedelta(days=1), input_tokens=30, output_tokens=12, provider="local")
    page = text(owner_client.get(reverse("usage")))
    assert "Tokens per day, this month" in page
    assert re.findall(r"<rect class=\"bar\"[^>]*><title>(.*?)</title>", page) == [
        "14 December: 42 tokens, 1 answer"
    ]


@pytest.mark.usefixtures("ledger")
def test_the_period_is_chosen_by_its_name(owner_client: Any) -> None:
    last = text(owner_client.get(reverse("usage"), {"period": "last-month"}))
    assert '<p id="period-totals">Last month: 1 answer · $1.00 · 14 tokens</p>' in last
    assert table(last, "by-day") == [["Fri 20 November", "1", "$1.00", "7", "7", "0"]]
    recent = text(owner_client.get(reverse("usage"), {"period": "30-days"}))
    assert (
        '<p id="period-totals">Last 30 days: 4 answers · $1.02 <span class="flag">'
        '+ 1 with price unknown</span> · 1,694 tokens <span class="flag">estimated</span></p>'
    ) in recent
    assert len(table(recent, "by-day")) == 3
    for bad in ("nonsense", "", "<script>", "month'--"):
        response = owner_client.get(reverse("usage"), {"period": bad})
        assert response.status_code == 200
        page = text(response)
        assert '<p id="period-totals">This month: 3 answers · $0.015' in page
        assert '<a href="?period=month" aria-current="page">This month</a>' in page


def test_nothing_used_yet(owner_client: Any, clock: dt.datetime) -> None:
    page = text(owner_client.get(reverse("usage")))
    assert "Spend</dt> <dd>$0.00</dd>" in page
    assert "No answers in this period." in page
    assert "<svg" not in page


# --------------------------------------------------------------------------- the limits


@pytest.mark.usefixtures("ledger", "fair_use")
def test_spend_and_counts_against_the_persons_limits(owner: Any, owner_client: Any) -> None:
    Quota.objects.create(
        user=owner,
        spend_per_month=Decimal("5"),
        requests_per_day=100,
        tokens_per_month=1_000_000,
        panes_per_turn=3,
    )
    QuotaCounter.objects.create(owner=f"user:{owner.pk}", period="2026-12", spend=Decimal("1.23"))
    QuotaCounter.objects.filter(owner=f"user:{owner.pk}", period="2026-12").update(
        tokens=5000, reserved_tokens=1000
    )
    QuotaCounter.objects.create(owner=f"user:{owner.pk}", period="2026-12-15", requests=7)
    page = text(owner_client.get(reverse("usage")))
    assert "<h3>Your limits</h3>" in page
    assert "$1.23 of $5.00 this month, resets on 1 January 2027 (in 17 days)" in page
    assert "7 of 100 answers today, resets at midnight UTC (in 12 h 0 min)" in page
    assert "6,000 of 1,000,000 tokens this month" in page  # used + still held
    assert "at most 3 models per turn" in page
    assert (
        "Fair use, for everyone: 4 turns answering at once · 30 Sends a minute · "
        "15 minutes per answer."
    ) in page


@pytest.mark.usefixtures("fair_use")
def test_with_no_quota_only_fair_use_is_shown(owner_client: Any, clock: dt.datetime) -> None:
    page = text(owner_client.get(reverse("usage")))
    assert "No quota is set for you; only fair use applies." in page
    assert "4 turns answering at once" in page


def test_the_site_default_and_the_active_teams_quota_apply(
    owner: Any, owner_client: Any, team: Team, clock: dt.datetime
) -> None:
    from playground.teams import set_active_team

    set_active_team(owner, team)
    Quota.objects.create(scope="site", user=None, requests_per_day=50)
    Quota.objects.create(scope="team", user=None, team=team, spend_per_month=Decimal("20"))
    page = text(owner_client.get(reverse("usage")))
    assert "<h3>Your limits</h3>" in page
    assert "0 of 50 answers today" in page
    assert "<h3>Team 'research''s limits</h3>" in page
    assert "$0.00 of $20.00 this month" in page


# --------------------------------------------------------------------------- a team's


def test_a_teams_usage_by_member(
    owner: Any, outsider: Any, team: Team, client: Any, clock: dt.datetime
) -> None:
    from django.contrib.auth import get_user_model

    bob = get_user_model().objects.get(username="bob")
    day = dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)
    entry(owner, day, team=team, cost_usd=Decimal("0.5"), input_tokens=40, output_tokens=2)
    entry(bob, day, team=team, key_scope="team", cost_usd=Decimal("0.25"), input_tokens=10)
    entry(bob, day, team=team, key_scope="team", input_tokens=3, estimated=True)
    entry(owner, day, cost_usd=Decimal("3.33"))  # on her own, not for the team
    entry(outsider, day, cost_usd=Decimal("4.44"))
    Quota.objects.create(scope="team", user=None, team=team, spend_per_month=Decimal("10"))
    QuotaCounter.objects.create(owner=f"team:{team.pk}", period="2026-12", spend=Decimal("0.75"))

    page = text(login(client, "bob").get(reverse("team_usage", args=[team.pk])))
    assert "Usage of team research" in page
    assert (
        'Spend</dt> <dd>$0.75 <span class="flag">+ 1 answer with price unknown</span></dd>'
    ) in page
    assert "<h3>Team 'research''s limits</h3>" in page
    assert "$0.75 of $10.00 this month, resets on 1 January 2027" in page
    assert table(page, "by-member") == [
        ["alice", "1", "$0.50", "40", "2", "0"],
        ["bob", "2", "$0.25 + 1 price unknown", "13", "0 estimated", "0"],
    ]
    assert [row[:2] for row in table(page, "by-model")] == [
        ["OpenAI · GPT-5", "members' own keys"],
        ["OpenAI · GPT-5", "team keys"],
    ]
    assert "3.33" not in page and "4.44" not in page
    assert "Fair use, for everyone" not in page
