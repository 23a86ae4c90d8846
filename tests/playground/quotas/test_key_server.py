"""A saved key is only ever sent to the server it was saved for: re-pointing a catalog entry
elsewhere leaves the key behind, at Send and at the worker's claim alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.catalog import forget_catalog
from playground.credentials import seal_parts
from playground.models import CatalogEntry, Credential, Response
from playground.worker.runner import claim_responses
from tests.playground.helpers import send_form

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_redis")]
HTMX = {"HTTP_HX_REQUEST": "true"}
MODEL = "openai:gpt-4.1-mini"
SECRET = "sk-proj-saved-for-openai-1234"


@pytest.fixture
def saved(owner: Any, settings: Any) -> Credential:
    settings.PLAYGROUND_PROVIDER_KEYS = {}
    key = Credential(
        scope="user",
        user=owner,
        provider="openai",
        label="work",
        base_url="https://api.openai.com/v1",
    )
    seal_parts(key, {"api_key": SECRET})
    key.save()
    return key


def repoint(url: str) -> None:
    CatalogEntry.objects.filter(key=MODEL).update(base_url=url)
    forget_catalog()


def test_send_does_not_take_a_key_saved_for_another_server(
    owner_client: Any, saved: Credential
) -> None:
    repoint("https://gateway.example/v1")
    answer = owner_client.post(reverse("send_new"), send_form(panes=[(MODEL, {})]), **HTMX)
    assert "needs a key" in answer.content.decode()
    assert not Response.objects.exists()


def test_the_worker_does_not_send_a_key_whose_model_moved_after_send(
    owner_client: Any, saved: Credential
) -> None:
    answer = owner_client.post(reverse("send_new"), send_form(panes=[(MODEL, {})]), **HTMX)
    assert "HX-Redirect" in answer
    row = Response.objects.get()
    assert row.credential_id == saved.pk
    repoint("https://gateway.example/v1")

    (run,) = claim_responses(row.turn_id, [row.pk])

    assert "was saved for another server" in run.refusal
    assert run.request.credentials.api_key == ""
