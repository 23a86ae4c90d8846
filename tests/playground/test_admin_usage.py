"""The usage ledger in Django admin: read-only for everyone, superusers included, with the
totals of the rows its filters select; and the sessions' lists, which show no prompt."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.models import Team, UsageEntry
from tests.playground.helpers import make_turn

pytestmark = pytest.mark.django_db

LEDGER = reverse("admin:playground_usageentry_changelist")


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def totals_line(response: Any) -> str:
    found = re.search(r'<p class="usage-totals" id="usage-totals">(.*?)</p>', text(response), re.S)
    assert found, "no totals line"
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


def entry(user: Any, provider: str, tokens_in: int, tokens_out: int, **fields: Any) -> UsageEntry:
    return UsageEntry.objects.create(
        user=user,
        key_scope=fields.pop("key_scope", "org"),
        provider=provider,
        model_key=f"{provider}:model",
        display_name=f"{provider} model",
        status="done",
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        **fields,
    )


@pytest.fixture
def ledger(owner: Any, outsider: Any) -> list[UsageEntry]:
    team = Team.objects.create(name="research")
    return [
        entry(owner, "openai", 100, 20, cost=Decimal("0.002"), currency="USD",
              cost_usd=Decimal("0.002"), team=team),
        entry(owner, "openai", 300, 40, cost=Decimal("0.004"), currency="USD",
              cost_usd=Decimal("0.004"), key_scope="user"),
        entry(outsider, "qwen", 1000, 500, cost=Decimal("0.07"), currency="CNY",
              cost_usd=Decimal("0.0098"), estimated=True),
        entry(outsider, "echo", 5, 5, key_scope=""),  # no price: not in the cost
    ]  # fmt: skip


def test_the_ledger_lists_each_entry_with_its_totals(
    admin_client: Client, ledger: list[UsageEntry]
) -> None:
    response = admin_client.get(LEDGER)

    assert response.status_code == 200
    assert totals_line(response) == (
        "Totals of the 4 entries these filters select: 1405 tokens in, 565 out, 0 reasoning; "
        "0.0158 USD (1 without a price, not counted)."
    )
    body = text(response)
    assert "0.07 CNY" in body and "Personal" in body and "Organisation" in body


@pytest.mark.parametrize(
    ("query", "line"),
    [
        (
            {"provider": "openai"},
            "Totals of the 2 entries these filters select: 400 tokens in, 60 out, 0 reasoning; "
            "0.0060 USD.",
        ),
        (
            {"q": "mallory"},
            "Totals of the 2 entries these filters select: 1005 tokens in, 505 out, "
            "0 reasoning; 0.0098 USD (1 without a price, not counted).",
        ),
        (
            {"estimated__exact": "1"},
            "Totals of the 1 entry these filters select: 1000 tokens in, 500 out, 0 reasoning; "
            "0.0098 USD.",
        ),
        (
            {"key_scope": "user"},
            "Totals of the 1 entry these filters select: 300 tokens in, 40 out, 0 reasoning; "
            "0.0040 USD.",
        ),
    ],
    ids=["provider", "search", "estimated", "key"],
)
def test_the_totals_are_of_the_filtered_rows(
    admin_client: Client, ledger: list[UsageEntry], query: dict[str, str], line: str
) -> None:
    assert totals_line(admin_client.get(LEDGER, query)) == line


def test_the_totals_are_of_every_filtered_row_not_only_the_page(
    admin_client: Client, owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.admin.usage import UsageEntryAdmin

    monkeypatch.setattr(UsageEntryAdmin, "list_per_page", 2)
    for _ in range(5):
        entry(owner, "openai", 10, 1, cost_usd=Decimal("0.001"))

    line = totals_line(admin_client.get(LEDGER))

    assert line == (
        "Totals of the 5 entries these filters select: 50 tokens in, 5 out, 0 reasoning; "
        "0.0050 USD."
    )


def test_the_ledger_has_a_date_drill_down(admin_client: Client, owner: Any) -> None:
    old = entry(owner, "openai", 7, 7)
    UsageEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=800))
    entry(owner, "openai", 1, 1)
    year = str(timezone.localtime().year)

    line = totals_line(admin_client.get(LEDGER, {"created_at__year": year}))

    assert line.startswith("Totals of the 1 entry these filters select: 1 tokens in, 1 out")


def test_nobody_adds_changes_or_deletes_a_ledger_row(
    admin_client: Client, ledger: list[UsageEntry]
) -> None:
    row = ledger[0]
    change = reverse("admin:playground_usageentry_change", args=[row.pk])
    delete = reverse("admin:playground_usageentry_delete", args=[row.pk])

    assert admin_client.get(reverse("admin:playground_usageentry_add")).status_code == 403
    assert admin_client.get(change).status_code == 200  # to look at
    assert admin_client.post(change, {"input_tokens": "1"}).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        LEDGER, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    row.refresh_from_db()
    assert (row.input_tokens, UsageEntry.objects.count()) == (100, 4)
    assert 'name="action"' not in text(admin_client.get(LEDGER))


def test_people_who_are_not_staff_are_sent_to_the_admin_login(
    outsider_client: Client, ledger: list[UsageEntry]
) -> None:
    for url in (LEDGER, reverse("admin:admin_logentry_changelist")):
        response = outsider_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


# ------------------------------------------------------------------------------ sessions


def test_session_pages_render_and_their_lists_hold_no_prompt(
    admin_client: Client, owner: Any
) -> None:
    turn = make_turn(owner, [("echo", {})], prompt="A secret plan about the merger")
    turn.session.title = "Merger notes"
    turn.session.save()
    response_row = turn.responses.get()
    for name, row in (("session", turn.session), ("turn", turn), ("response", response_row)):
        listed = admin_client.get(reverse(f"admin:playground_{name}_changelist"))
        assert listed.status_code == 200
        assert "A secret plan" not in text(listed)
        page = admin_client.get(reverse(f"admin:playground_{name}_change", args=[row.pk]))
        assert page.status_code == 200
    assert "Merger notes" in text(admin_client.get(reverse("admin:playground_session_changelist")))
