"""The catalog in admin: Test connection asks the workers and waits a few seconds in all
(an action holds a request thread); a test still running shows in the Last test column."""

from __future__ import annotations

import html
import json
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.admin import catalog as catalog_admin
from playground.models import CatalogEntry

pytestmark = pytest.mark.django_db

LIST = reverse("admin:playground_catalogentry_changelist")


def test_test_connection_shows_the_answers_that_came_and_leaves_the_rest_to_the_list(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.redis_sync import redis_client
    from playground.tasks import check_connection

    asked: list[tuple[Any, ...]] = []

    def worker(model_key: str, reply_to: str, owner_id: Any) -> None:
        asked.append((model_key, reply_to, owner_id))
        if model_key == "echo":  # one answers at once; the other never does
            redis_client().rpush(reply_to, "Echo: connected; the model answered in 0.0 s.")

    monkeypatch.setattr(check_connection, "delay", worker)
    monkeypatch.setattr(catalog_admin, "WAIT_S", 0.3)
    entries = CatalogEntry.objects.filter(key__in=["echo", "openai:gpt-5"])

    started = time.monotonic()
    page = admin_client.post(
        LIST,
        {"action": "test_connection", "_selected_action": [e.pk for e in entries]},
        follow=True,
    )
    said = html.unescape(page.content.decode())

    assert time.monotonic() - started < 3  # 0.3 s in all (generous bound)
    assert sorted(a[0] for a in asked) == ["echo", "openai:gpt-5"]
    assert "Echo: connected; the model answered in 0.0 s." in said
    assert "OpenAI · GPT-5: still testing after 0 s; its Last test shows the answer" in said

    record = {"at": time.time(), "sentence": "OpenAI · GPT-5: failed — no answer within 20 s."}
    redis_client().set("pg:conn:catalog:openai:gpt-5", json.dumps(record))
    listed = html.unescape(admin_client.get(LIST).content.decode())
    assert "OpenAI · GPT-5: failed — no answer within 20 s." in listed
    assert "not tested" in listed  # the others
