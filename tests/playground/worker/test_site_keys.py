"""The site environment's provider key goes to that provider's own server only (LiteLLM
CVE-2024-6587 class: whoever may edit a catalog entry pointed it at their own host and
received the key). Asserted on the bytes a real fake server on loopback receives."""

from __future__ import annotations

import html
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from playground.catalog import forget_catalog
from playground.models import CatalogEntry, Status
from tests.playground.fake_openai import FakeOpenAI
from tests.playground.helpers import make_turn, responses_of, run_turn, send_form

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

SITE_KEY = "sk-site-environment-7c1d9e4b2a"
MODEL = "openai:gpt-4.1-mini"


@pytest.fixture(autouse=True)
def _site_key(settings: Any) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": SITE_KEY}
    # Catalog entries may reach loopback here, so that only the key rule is at stake.
    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = ["127.0.0.1"]
    settings.PLAYGROUND_BASE_URLS = {}
    settings.PLAYGROUND_SITE_KEY_HOSTS = []


@sync_to_async
def repoint(url: str) -> None:
    """What a staff member who may change catalog entries does in admin."""
    CatalogEntry.objects.filter(key=MODEL).update(base_url=url)
    forget_catalog()


@sync_to_async
def one_pane_turn(owner: Any) -> Any:
    return make_turn(owner, [(MODEL, {})])


def received_key(server: FakeOpenAI) -> bool:
    return any(SITE_KEY in repr(r) for r in server.requests)


async def test_a_catalog_entry_re_pointed_at_another_host_is_sent_no_site_key(
    owner: Any, fake_server: tuple[FakeOpenAI, str], aredis: Any
) -> None:
    """CVE-2024-6587: a pane sent with the site's key, its entry then pointed at another
    server, and the admin's Test connection of that entry: the server gets no key."""
    server, base_url = fake_server
    turn = await one_pane_turn(owner)
    await repoint(base_url)

    await run_turn(turn.pk)

    assert not received_key(server)
    [row] = await sync_to_async(responses_of)(turn)
    assert row.status == Status.ERROR
    assert row.error == (
        "The site's OpenAI key is sent only to OpenAI's own server, and OpenAI · GPT-4.1 mini "
        "is reached at 127.0.0.1: pick a key saved for that server in the pane's Key list, "
        "or add one under Keys."
    )
    from playground.worker.connection_check import run_check

    await run_check(MODEL, "pg:conn:site-key")
    [sentence] = await aredis.lrange("pg:conn:site-key", 0, -1)
    assert sentence.decode().startswith("OpenAI · GPT-4.1 mini: failed — The site's OpenAI key")
    assert not received_key(server)
    assert all("authorization" not in r["headers"] for r in server.requests)


async def test_the_site_key_goes_to_a_server_the_operator_named(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any
) -> None:
    """The same server, named by the operator (PLAYGROUND_OPENAI_BASE_URL), and then a
    typed one on a host the operator lists: each receives the key (what the test above
    would see if the rule were missing)."""
    server, base_url = fake_server
    settings.PLAYGROUND_BASE_URLS = {"openai": base_url}
    forget_catalog()
    turn = await one_pane_turn(owner)
    await run_turn(turn.pk)
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {SITE_KEY}"]

    settings.PLAYGROUND_BASE_URLS = {}
    settings.PLAYGROUND_SITE_KEY_HOSTS = ["127.0.0.1"]
    await repoint(base_url + "/")
    turn = await one_pane_turn(owner)
    await run_turn(turn.pk)
    assert len(server.requests) == 2 and received_key(server)


def test_send_and_the_model_picker_say_a_re_pointed_entry_needs_a_key_for_its_server(
    owner_client: Any,
) -> None:
    CatalogEntry.objects.filter(key=MODEL).update(base_url="https://gateway.example/v1")
    forget_catalog()

    page = html.unescape(owner_client.get(reverse("home")).content.decode())
    assert "OpenAI · GPT-4.1 mini (needs a key for gateway.example)" in page

    answer = owner_client.post(
        reverse("send_new"), send_form(panes=[(MODEL, {})]), HTTP_HX_REQUEST="true"
    )
    assert "OpenAI · GPT-4.1 mini needs a key for gateway.example, the server it is" in (
        html.unescape(answer.content.decode())
    )
