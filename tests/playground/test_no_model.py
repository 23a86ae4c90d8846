"""A deployment where an admin disabled every catalog model: the page says what to do, and
Add model answers without failing; a person's own endpoint is still offered."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.catalog import forget_catalog
from playground.models import CatalogEntry, CustomEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def nothing_enabled() -> None:
    CatalogEntry.objects.update(enabled=False)
    forget_catalog()


def test_the_page_says_no_model_is_enabled(owner_client: Any, nothing_enabled: None) -> None:
    page = owner_client.get(reverse("home"))
    assert page.status_code == 200
    body = page.content.decode()
    assert '<section class="pane"' not in body
    assert "No model is enabled" in body
    assert reverse("endpoints") in body


def test_add_model_adds_nothing_and_does_not_fail(owner_client: Any, nothing_enabled: None) -> None:
    answer = owner_client.get(reverse("pane_editor"), {"pane": "0"})
    assert answer.status_code == 204
    assert answer.content == b""


def test_a_persons_own_endpoint_is_still_offered(
    owner: Any, owner_client: Any, nothing_enabled: None
) -> None:
    endpoint = CustomEndpoint.objects.create(
        owner=owner, name="Lab", base_url="http://10.0.0.5:8000/v1", model_ids=["qwen3"]
    )
    page = owner_client.get(reverse("home")).content.decode()
    assert page.count('<section class="pane"') == 1
    assert "No model is enabled" not in page
    added = owner_client.get(reverse("pane_editor"), {"pane": "0"})
    assert added.status_code == 200
    assert f'value="mine:{endpoint.pk}:qwen3" selected' in added.content.decode()
