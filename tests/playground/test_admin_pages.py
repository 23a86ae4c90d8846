"""Every page of Django admin renders for a superuser, with a row of each kind saved: the
list, the add form (or 403 where adding is refused to everyone) and a row's page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from playground.credentials import seal_parts
from playground.models import (
    Credential,
    Membership,
    Quota,
    QuotaCounter,
    RateLimit,
    Scope,
    ShareLink,
    SitePolicy,
    Team,
    UsageEntry,
)
from tests.playground.helpers import make_endpoint, make_turn

pytestmark = pytest.mark.django_db

READ_ONLY = {"usageentry", "quotacounter", "logentry", "customendpoint", "sharelink"}
ONE_ROW = {"sitepolicy"}  # changed, never added to


@pytest.fixture
def one_of_each(owner: Any, admin_user: Any) -> None:
    turn = make_turn(owner, [("echo", {})])
    ShareLink.objects.create(session=turn.session, token_hash="0" * 64, created_by=owner)
    SitePolicy.current()
    make_endpoint(owner)
    RateLimit.objects.create(provider="openai", requests_per_minute=60)
    team = Team.objects.create(name="research")
    Membership.objects.create(team=team, user=owner)
    Quota.objects.create(scope="site", requests_per_day=100)
    QuotaCounter.objects.create(owner=f"user:{owner.pk}", period="2026-12")
    key = Credential(provider="openai", label="shared", scope=Scope.ORG, base_url="https://x.io")
    seal_parts(key, {"api_key": "sk-0123456789abcdef"})
    key.save()
    UsageEntry.objects.create(
        user=owner, key_scope="org", provider="openai", model_key="openai:gpt-5",
        display_name="GPT-5", status="done", cost_usd=Decimal("0.01"),
    )  # fmt: skip
    LogEntry.objects.log_actions(
        admin_user.pk, [team], CHANGE, change_message="[]", single_object=True
    )


def test_every_admin_page_renders(admin_client: Client, one_of_each: None) -> None:
    assert admin_client.get(reverse("admin:index")).status_code == 200
    for model in admin.site._registry:
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        assert admin_client.get(reverse(f"{name}_changelist")).status_code == 200, name
        add = admin_client.get(reverse(f"{name}_add")).status_code
        assert add == (403 if opts.model_name in READ_ONLY | ONE_ROW else 200), name
        row = model._default_manager.first()
        if row is None:
            assert ContentType.objects.get_for_model(model).model == "group", name
            continue
        assert admin_client.get(reverse(f"{name}_change", args=[row.pk])).status_code == 200, name
