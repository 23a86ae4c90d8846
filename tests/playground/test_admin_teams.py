"""Teams, members and quotas in Django admin: every page renders, a member cannot be added
twice, and a quota that makes no sense is refused with a sentence, nothing saved."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from playground.models import ExchangeRate, Membership, Quota, QuotaCounter, QuotaScope, Team

pytestmark = pytest.mark.django_db

QUOTA_ADD = reverse("admin:playground_quota_add")


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def team(owner: Any) -> Team:
    team = Team.objects.create(name="research")
    Membership.objects.create(team=team, user=owner, role="owner")
    return team


def quota_form(**fields: str) -> dict[str, str]:
    return {
        "scope": "site",
        "user": "",
        "team": "",
        "requests_per_day": "",
        "tokens_per_month": "",
        "spend_per_month": "",
        "concurrent_turns": "",
        "panes_per_turn": "",
        "max_answer_tokens": "",
        "allowed_providers": "",
        "allowed_models": "",
        **fields,
    }


def inline_management(prefix: str, initial: int = 0, total: int = 1) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def team_form(name: str, members: list[tuple[str, str]], quota: dict[str, str]) -> dict[str, str]:
    """The team page as a browser posts it: its new members and its quota inline."""
    form = {"name": name, **inline_management("memberships", total=len(members))}
    for i, (user, role) in enumerate(members):
        form |= {f"memberships-{i}-user": user, f"memberships-{i}-role": role}
    form |= inline_management("quota", total=1)
    form |= {f"quota-0-{name}": value for name, value in quota.items()}
    return form


# ------------------------------------------------------------------------------ pages


def test_every_team_and_quota_page_renders_for_a_superuser(
    admin_client: Client, owner: Any, team: Team
) -> None:
    quota = Quota.objects.create(scope=QuotaScope.TEAM, team=team, requests_per_day=5)
    counter = QuotaCounter.objects.create(owner=f"team:{team.pk}", period="2026-12", tokens=7)
    rows = {
        "team": team,
        "membership": team.memberships.get(),
        "quota": quota,
        "exchangerate": ExchangeRate.objects.first(),
        "quotacounter": counter,
    }
    for name, row in rows.items():
        for url in (
            reverse(f"admin:playground_{name}_changelist"),
            reverse(f"admin:playground_{name}_change", args=[row.pk]),
        ):
            assert admin_client.get(url).status_code == 200, url
        add = admin_client.get(reverse(f"admin:playground_{name}_add")).status_code
        assert add == (403 if name == "quotacounter" else 200)
    person = admin_client.get(reverse("admin:auth_user_change", args=[owner.pk]))
    assert person.status_code == 200
    assert "Personal quota (else the site default applies)" in text(person)
    assert admin_client.get(reverse("admin:auth_user_add")).status_code == 200
    assert "research (team)" in text(
        admin_client.get(reverse("admin:playground_quotacounter_changelist"))
    )


def test_people_who_are_not_staff_are_sent_to_the_admin_login(
    outsider_client: Client, team: Team
) -> None:
    for url in (
        reverse("admin:playground_team_changelist"),
        reverse("admin:playground_team_change", args=[team.pk]),
        QUOTA_ADD,
        reverse("admin:auth_user_changelist"),
    ):
        response = outsider_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


# ------------------------------------------------------------------------------ teams


def test_a_team_is_made_with_its_members_and_its_quota_on_one_page(
    admin_client: Client, owner: Any, outsider: Any
) -> None:
    form = team_form(
        "design",
        [(str(owner.pk), "admin"), (str(outsider.pk), "member")],
        {"requests_per_day": "40", "allowed_providers": "openai, qwen"},
    )

    response = admin_client.post(reverse("admin:playground_team_add"), form)

    assert response.status_code == 302
    team = Team.objects.get(name="design")
    roles = {m.user.username: m.role for m in team.memberships.all()}
    assert roles == {"alice": "admin", "mallory": "member"}
    quota = Quota.objects.get(team=team)
    assert (quota.scope, quota.user, quota.requests_per_day) == (QuotaScope.TEAM, None, 40)
    assert quota.allowed_providers == ["openai", "qwen"]


def test_a_team_without_quota_numbers_gets_no_quota(admin_client: Client, owner: Any) -> None:
    form = team_form("plain", [(str(owner.pk), "member")], {})
    assert admin_client.post(reverse("admin:playground_team_add"), form).status_code == 302
    assert not Quota.objects.exists()


def test_adding_a_member_twice_is_refused_and_nothing_is_saved(
    admin_client: Client, owner: Any, team: Team
) -> None:
    again = admin_client.post(
        reverse("admin:playground_membership_add"),
        {"team": str(team.pk), "user": str(owner.pk), "role": "member"},
    )
    assert again.status_code == 200
    assert "Membership with this Team and User already exists." in text(again)

    twice_inline = team_form("design", [(str(owner.pk), "member"), (str(owner.pk), "admin")], {})
    refused = admin_client.post(reverse("admin:playground_team_add"), twice_inline)
    assert refused.status_code == 200
    assert "Please correct the duplicate data for user" in text(refused)

    assert list(Membership.objects.values_list("team__name", "role")) == [("research", "owner")]
    assert not Team.objects.filter(name="design").exists()


def test_memberships_are_filtered_by_role_and_team(
    admin_client: Client, owner: Any, outsider: Any, team: Team
) -> None:
    other = Team.objects.create(name="ops")
    Membership.objects.create(team=other, user=outsider, role="member")
    url = reverse("admin:playground_membership_changelist")

    owners = text(admin_client.get(url, {"role__exact": "owner"}))
    assert "alice in research" in owners and "mallory" not in owners
    in_ops = text(admin_client.get(url, {"team__id__exact": str(other.pk)}))
    assert "mallory in ops" in in_ops and "alice" not in in_ops


# ------------------------------------------------------------------------------ quotas


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        (
            {"spend_per_month": "-1"},
            "A spend limit cannot be negative: enter 0 to allow no spending, or leave it "
            "empty for no limit.",
        ),
        ({"requests_per_day": "-3"}, "Ensure this value is greater than or equal to 0."),
        (
            {"scope": "user"},
            "Choose the person this quota is for.",
        ),
        ({"scope": "team"}, "Choose the team this quota is for."),
        (
            {"allowed_providers": "openai, opneai"},
            "There is no provider named 'opneai'; the providers are: ",
        ),
        (
            {"allowed_models": "openai:gpt-5, openai:gpt-9"},
            "There is no catalog model with the key 'openai:gpt-9' (see Catalog entries for "
            "the keys).",
        ),
        (
            {"allowed_providers": '["openai"'},
            "Write the names separated by commas, e.g. openai, qwen.",
        ),
    ],
    ids=["spend", "requests", "no-person", "no-team", "provider", "model", "json"],
)
def test_a_quota_that_makes_no_sense_is_refused_with_a_sentence(
    admin_client: Client, fields: dict[str, str], sentence: str
) -> None:
    response = admin_client.post(QUOTA_ADD, quota_form(**fields))

    assert response.status_code == 200
    assert sentence in text(response)
    assert not Quota.objects.exists()


def test_who_a_quota_is_for_must_fit_its_kind(admin_client: Client, owner: Any, team: Team) -> None:
    site_for_someone = admin_client.post(QUOTA_ADD, quota_form(user=str(owner.pk)))
    assert (
        "The site default is everyone's: clear the person and the team, or choose Person or Team."
    ) in text(site_for_someone)

    person_and_team = admin_client.post(
        QUOTA_ADD, quota_form(scope="user", user=str(owner.pk), team=str(team.pk))
    )
    assert "A person's quota names no team: clear it." in text(person_and_team)

    team_and_person = admin_client.post(
        QUOTA_ADD, quota_form(scope="team", user=str(owner.pk), team=str(team.pk))
    )
    assert "A team's quota names no person: clear it." in text(team_and_person)
    assert not Quota.objects.exists()

    assert admin_client.post(QUOTA_ADD, quota_form(requests_per_day="10")).status_code == 302
    second = admin_client.post(QUOTA_ADD, quota_form(requests_per_day="20"))
    assert "There is already a site default quota: change that one instead." in text(second)
    assert list(Quota.objects.values_list("scope", "requests_per_day")) == [("site", 10)]


def test_a_valid_quota_is_saved_as_typed(admin_client: Client, owner: Any) -> None:
    response = admin_client.post(
        QUOTA_ADD,
        quota_form(
            scope="user",
            user=str(owner.pk),
            spend_per_month="12.50",
            tokens_per_month="100000",
            allowed_models="openai:gpt-5 echo",
            covers_personal_keys="on",
        ),
    )

    assert response.status_code == 302
    quota = Quota.objects.get()
    assert (quota.scope, quota.user, quota.team) == (QuotaScope.USER, owner, None)
    assert (quota.spend_per_month, quota.tokens_per_month) == (Decimal("12.50"), 100000)
    assert quota.allowed_models == ["openai:gpt-5", "echo"]
    assert quota.allowed_providers == []
    assert quota.covers_personal_keys
    page = text(admin_client.get(reverse("admin:playground_quota_change", args=[quota.pk])))
    assert 'value="openai:gpt-5, echo"' in page
    for legend in ("Who", "Limits", "Allowed", "Personal keys"):
        assert f">{legend}</h2>" in page


def test_a_person_quota_is_set_on_their_user_page(admin_client: Client, owner: Any) -> None:
    page = admin_client.get(reverse("admin:auth_user_change", args=[owner.pk]))
    form = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if key in ("username", "first_name", "last_name", "email", "is_active")
    }
    form |= {
        "date_joined_0": "2026-12-01",
        "date_joined_1": "10:00:00",
        **inline_management("quota", total=1),
        "quota-0-requests_per_day": "25",
        "quota-0-allowed_providers": "gemini",
    }
    form["is_active"] = "on"

    response = admin_client.post(reverse("admin:auth_user_change", args=[owner.pk]), form)

    assert response.status_code == 302, text(response)[:2000]
    quota = Quota.objects.get()
    assert (quota.scope, quota.user, quota.requests_per_day) == (QuotaScope.USER, owner, 25)
    assert quota.allowed_providers == ["gemini"]

    refused = admin_client.post(
        reverse("admin:auth_user_change", args=[owner.pk]),
        form
        | inline_management("quota", initial=1, total=1)
        | {"quota-0-id": str(quota.pk), "quota-0-user": str(owner.pk)}
        | {"quota-0-spend_per_month": "-5"},
    )
    assert refused.status_code == 200
    assert "A spend limit cannot be negative" in text(refused)
    quota.refresh_from_db()
    assert quota.spend_per_month is None


def test_counters_are_read_only(admin_client: Client, owner: Any) -> None:
    counter = QuotaCounter.objects.create(owner=f"user:{owner.pk}", period="2026-12-04")
    change = reverse("admin:playground_quotacounter_change", args=[counter.pk])
    assert admin_client.post(change, {"owner": "user:1", "period": "x"}).status_code == 403
    delete = reverse("admin:playground_quotacounter_delete", args=[counter.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    counter.refresh_from_db()
    assert (counter.owner, counter.period) == (f"user:{owner.pk}", "2026-12-04")
    listed = text(admin_client.get(reverse("admin:playground_quotacounter_changelist")))
    assert "alice (person)" in listed


def test_a_change_of_a_team_is_in_the_admin_history(admin_client: Client, team: Team) -> None:
    form = {
        "name": "research and development",
        **inline_management("memberships", initial=1, total=1),
        "memberships-0-id": str(team.memberships.get().pk),
        "memberships-0-team": str(team.pk),
        "memberships-0-user": str(team.memberships.get().user_id),
        "memberships-0-role": "owner",
        **inline_management("quota", total=1),
    }
    assert (
        admin_client.post(reverse("admin:playground_team_change", args=[team.pk]), form).status_code
        == 302
    )

    entry = LogEntry.objects.get()
    assert entry.get_change_message() == "Changed Name."
    history = text(admin_client.get(reverse("admin:admin_logentry_changelist")))
    assert "Admin history" in history
    assert "research and development" in history and "Changed Name." in history
    assert admin_client.get(reverse("admin:admin_logentry_add")).status_code == 403
    change = reverse("admin:admin_logentry_change", args=[entry.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"change_message": "[]"}).status_code == 403
    delete = reverse("admin:admin_logentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert LogEntry.objects.count() == 1
