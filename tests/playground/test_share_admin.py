"""Sharing in Django admin: the site policy is one row an admin changes (never adds to or
deletes); share links are listed read-only, never with their hash in full, and revoked
with an action that admin history records."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from playground.models import Audience, ShareLink, SitePolicy
from tests.playground.share_helpers import finished_comparison, link_to, shared_url

pytestmark = pytest.mark.django_db


def test_the_site_policy_is_one_row_to_change(admin_client: Client, owner: Any) -> None:
    listed = admin_client.get(reverse("admin:playground_sitepolicy_changelist"))
    assert listed.status_code == 200
    [policy] = SitePolicy.objects.all()
    assert admin_client.get(reverse("admin:playground_sitepolicy_add")).status_code == 403
    delete = reverse("admin:playground_sitepolicy_delete", args=[policy.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    session = finished_comparison(owner)
    _link, token = link_to(session, Audience.ANYONE)
    assert Client().get(shared_url(token)).status_code == 200

    changed = admin_client.post(
        reverse("admin:playground_sitepolicy_change", args=[policy.pk]), {}
    )  # the box unticked

    assert changed.status_code == 302
    assert SitePolicy.objects.get().allow_public_links is False
    assert Client().get(shared_url(token)).status_code == 404
    assert SitePolicy.objects.count() == 1


def test_links_are_listed_read_only_without_their_hash(admin_client: Client, owner: Any) -> None:
    session = finished_comparison(owner)
    link, token = link_to(session, expiry="7")

    listed = html.unescape(
        admin_client.get(reverse("admin:playground_sharelink_changelist")).content.decode()
    )
    change = reverse("admin:playground_sharelink_change", args=[link.pk])
    one = html.unescape(admin_client.get(change).content.decode())

    for page in (listed, one):
        assert link.token_hash[:8] + "…" in page
        assert link.token_hash not in page
        assert token not in page
        assert "alice" in page
    assert "Signed-in members of my teams" in listed
    assert 'name="audience"' not in one  # nothing to change
    assert admin_client.get(reverse("admin:playground_sharelink_add")).status_code == 403
    before = admin_client.post(
        reverse("admin:playground_sharelink_change", args=[link.pk]), {"audience": "anyone"}
    )
    assert before.status_code == 403
    link.refresh_from_db()
    assert link.audience == Audience.TEAMS


def test_the_revoke_action_revokes_the_selected_links(admin_client: Client, owner: Any) -> None:
    session = finished_comparison(owner)
    first, first_token = link_to(session, Audience.ANYONE)
    second, second_token = link_to(session, Audience.ANYONE)
    kept, kept_token = link_to(session, Audience.ANYONE)

    answer = admin_client.post(
        reverse("admin:playground_sharelink_changelist"),
        {"action": "revoke", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert "Revoked 2 links." in answer.content.decode()
    assert set(ShareLink.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
    assert Client().get(shared_url(first_token)).status_code == 404
    assert Client().get(shared_url(second_token)).status_code == 404
    assert Client().get(shared_url(kept_token)).status_code == 200
    assert LogEntry.objects.filter(change_message="Revoked").count() == 2
