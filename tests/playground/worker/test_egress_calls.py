"""SSRF through a base URL, at the moment of the call (LibreChat CVE-2026-31943 class): a
catalog entry's base URL typed in admin is checked like a person's just before the call and
its connection pinned to the address checked (DNS rebinding); redirects are never followed;
the environment's proxy variables are never used. Against real servers on loopback."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from playground.catalog import forget_catalog
from playground.models import CatalogEntry, Status
from tests.playground.fake_openai import FakeOpenAI
from tests.playground.helpers import (
    endpoint_key,
    make_endpoint,
    make_turn,
    responses_of,
    run_turn,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

GATEWAY = "custom:gateway"
KEY = "sk-endpoint-5e1f0a9b3c7d"


@sync_to_async
def catalog_turn(owner: Any, base_url: str) -> Any:
    """A catalog entry whose base URL staff typed (saved straight to the row, as an entry
    saved before the admin form checked it would be), and a turn that asks it."""
    CatalogEntry.objects.update_or_create(
        key=GATEWAY,
        defaults={
            "display_name": "Gateway",
            "provider": "openai_compatible",
            "model_id": "m",
            "base_url": base_url,
        },
    )
    forget_catalog()
    return make_turn(owner, [(GATEWAY, {})])


@sync_to_async
def own_turn(owner: Any, base_url: str) -> Any:
    endpoint = make_endpoint(owner, base_url=base_url, key=KEY, model_ids=["m"])
    return make_turn(owner, [(endpoint_key(endpoint), {})])


@sync_to_async
def the_row(turn: Any) -> Any:
    [row] = responses_of(turn)
    return row


def resolving(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """api.example.com resolves to each of ``answers`` in turn (the last from then on)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "api.example.com":
            return real(host, port, *args, **kwargs)
        address = answers[min(len(asked), len(answers) - 1)]
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


async def test_a_catalog_entry_typed_at_a_private_address_is_refused_before_the_call(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any
) -> None:
    server, base_url = fake_server
    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = []
    turn = await catalog_turn(owner, base_url)

    await run_turn(turn.pk)

    row = await the_row(turn)
    assert row.status == Status.ERROR
    assert row.error.startswith("127.0.0.1 resolves to a private or local address (127.0.0.1)")
    assert server.requests == []

    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = ["127.0.0.1"]  # the operator allows it
    turn = await catalog_turn(owner, base_url)
    await run_turn(turn.pk)
    assert (await the_row(turn)).status == Status.DONE
    assert len(server.requests) == 1


async def test_dns_rebinding_of_a_catalog_entrys_host_reaches_nothing(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public when checked just before the call, loopback a moment later when connecting:
    the connection is judged on the address it goes to, so nothing reaches loopback."""
    server, base_url = fake_server
    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = []
    port = base_url.split(":")[2].split("/")[0]
    asked = resolving(monkeypatch, ["93.184.216.34", "127.0.0.1"])
    turn = await catalog_turn(owner, f"http://api.example.com:{port}/v1")

    await run_turn(turn.pk)

    row = await the_row(turn)
    assert row.status == Status.ERROR
    assert "api.example.com resolves to a private or local address (127.0.0.1)" in row.error
    assert len(asked) == 2  # the check, then the connection's own lookup
    assert server.requests == []


async def test_a_redirect_is_never_followed_so_the_key_reaches_only_its_server(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any
) -> None:
    target, target_url = fake_server
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    seen: list[str] = []

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        seen.append(head.split("\r\n", 1)[0])
        location = f"{target_url}/chat/completions".encode()
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nlocation: %s\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n" % location
        )
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(redirect, "127.0.0.1", 0)
    try:
        port = listener.sockets[0].getsockname()[1]
        turn = await own_turn(owner, f"http://127.0.0.1:{port}/v1")
        await run_turn(turn.pk)
    finally:
        listener.close()

    row = await the_row(turn)
    assert seen == ["POST /v1/chat/completions HTTP/1.1"]
    assert row.status == Status.ERROR
    assert target.requests == []  # the redirect's target got nothing, so no key


async def test_the_environments_proxy_variables_are_never_used_for_a_call(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.worker.event_loop import _new_client

    server, base_url = fake_server
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    proxy = socket.create_server(("127.0.0.1", 0))
    proxy.setblocking(False)
    proxy_url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy_url)
        monkeypatch.setenv(name.lower(), proxy_url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")

    client = _new_client()
    try:
        assert client.trust_env is False
    finally:
        await client.aclose()
    turn = await own_turn(owner, base_url)
    await run_turn(turn.pk)

    assert (await the_row(turn)).status == Status.DONE
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {KEY}"]
    with pytest.raises(BlockingIOError):
        proxy.accept()  # no connection ever came to the proxy
    proxy.close()
