"""A person's own endpoint in the worker: its key is decrypted there only and sent only to
its base URL, which is checked again just before the call; the endpoint must belong to the
owner of the turn's session; a deleted one fails its pane with a sentence. Against a real
fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import base64
import json
import logging
import socket
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground.catalog import catalog, provider_limits
from playground.live import response_log
from playground.models import CustomEndpoint, Response, Status, Turn, UsageEntry
from playground.worker.runner import claim_responses
from tests.playground.fake_openai import FakeOpenAI
from tests.playground.helpers import (
    decoded,
    endpoint_key,
    make_endpoint,
    make_turn,
    responses_of,
    run_turn,
    send_form,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

KEY = "sk-vllm-4f9c2e7d1b8a6350c0de"
MODEL = "org/model:free"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@sync_to_async
def own_turn(owner: Any, base_url: str, **endpoint: Any) -> tuple[Turn, CustomEndpoint]:
    saved = make_endpoint(owner, base_url=base_url, key=KEY, model_ids=[MODEL], **endpoint)
    return make_turn(owner, [(endpoint_key(saved), {}), ("echo", {"delay_ms": 0})]), saved


@sync_to_async
def rows(turn: Turn) -> list[Response]:
    return responses_of(turn)


def _browser(user: Any) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


# ---------------------------------------------------------------- the whole way


@pytest.mark.usefixtures("loopback_allowed")
async def test_an_endpoint_saved_on_the_page_streams_with_its_key_sent_to_its_url_only(
    owner: Any,
    aredis: Any,
    fake_server: tuple[FakeOpenAI, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server, base_url = fake_server
    browser = await sync_to_async(_browser)(owner)
    await aredis.delete("celery")

    saved = await sync_to_async(browser.post)(
        reverse("endpoints"),
        {"name": "My vLLM", "base_url": base_url, "api_key": KEY, "model_ids": MODEL},
    )
    assert saved.status_code == 302
    endpoint = await CustomEndpoint.objects.aget()
    key = f"mine:{endpoint.pk}:{MODEL}"
    sent = await sync_to_async(browser.post)(
        reverse("send_new"), send_form("Say hello", panes=[(key, {"max_tokens": 20})]), **HTMX
    )
    assert sent.status_code == 200, sent.content.decode()
    turn = await Turn.objects.aget()
    [message] = await aredis.lrange("celery", 0, -1)
    args, kwargs, _ = json.loads(base64.b64decode(json.loads(message)["body"]))
    [response_id] = [r.pk for r in await rows(turn)]
    assert (args, kwargs) == ([turn.pk, [response_id]], {})

    await run_turn(turn.pk)

    [row] = await rows(turn)
    assert (row.status, row.error, row.text) == (Status.DONE, "", "Hello from the fake")
    assert row.display_name == f"My vLLM · {MODEL}"
    [request] = server.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/chat/completions")
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["json"]["model"] == MODEL
    assert request["json"]["messages"] == [{"role": "user", "content": "Say hello"}]
    assert request["json"]["max_tokens"] == 20
    # The key is nowhere else: not in a log line, the task message, the pane's log or
    # the session page.
    assert caplog.records
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY[-12:] not in record.getMessage()
    assert KEY not in caplog.text
    assert KEY.encode() not in message and KEY[-12:].encode() not in message
    log = decoded(await aredis.xrange(response_log.log_key(row.pk)))
    assert KEY not in json.dumps(log)
    page = await sync_to_async(browser.get)(reverse("session", args=[turn.session_id]))
    assert "Hello from the fake" in page.content.decode()
    assert KEY not in page.content.decode()


# ---------------------------------------------------------------- refused in the worker


@sync_to_async
def counted(row: Response) -> tuple[Any, ...]:
    """What a pane counts: its row's tokens and whether they were estimated, and its line
    in the usage ledger."""
    entry = UsageEntry.objects.get(response=row)
    return (
        row.input_tokens,
        row.output_tokens,
        row.usage_estimated,
        entry.input_tokens,
        entry.output_tokens,
    )


NOTHING = (0, 0, False, 0, 0)


async def test_a_deleted_endpoint_fails_its_pane_and_calls_nothing(
    owner: Any, fake_server: tuple[FakeOpenAI, str], loopback_allowed: None
) -> None:
    server, base_url = fake_server
    turn, endpoint = await own_turn(owner, base_url)
    await endpoint.adelete()

    await run_turn(turn.pk)

    own, echo = await rows(turn)
    assert (own.status, own.error) == (
        Status.ERROR,
        "This endpoint was deleted; pick another model.",
    )
    assert (echo.status, echo.text) == (Status.DONE, "Echo #1: Hello there")
    assert server.requests == []
    # Nothing was asked, so nothing is counted (was the prompt's estimate).
    assert await counted(own) == NOTHING
    assert (await counted(echo))[0] > 0


async def test_the_worker_runs_only_endpoints_of_the_sessions_owner(
    owner: Any, outsider: Any, fake_server: tuple[FakeOpenAI, str], loopback_allowed: None
) -> None:
    """A pane naming someone else's endpoint (written past Send, which refuses it) does not
    get that endpoint's key or URL."""
    server, base_url = fake_server
    theirs = await sync_to_async(make_endpoint)(outsider, base_url=base_url, key=KEY)
    turn = await sync_to_async(make_turn)(owner, [(endpoint_key(theirs), {})])

    await run_turn(turn.pk)

    [row] = await rows(turn)
    assert (row.status, row.error) == (
        Status.ERROR,
        "This endpoint was deleted; pick another model.",
    )
    assert server.requests == []


async def test_a_host_no_longer_allowed_is_refused_just_before_the_call(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any
) -> None:
    server, base_url = fake_server
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    turn, _ = await own_turn(owner, base_url)
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = []

    await run_turn(turn.pk)

    own, echo = await rows(turn)
    assert own.status == Status.ERROR
    assert own.error == (
        "127.0.0.1 resolves to a private or local address (127.0.0.1); only public servers "
        "can be used here. A site admin can add private servers to the catalog."
    )
    assert echo.status == Status.DONE
    assert server.requests == []
    assert await counted(own) == NOTHING


async def test_a_name_that_resolves_elsewhere_by_now_is_refused_just_before_the_call(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public when saved, private at call time (DNS changed): no request goes out."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "api.example.com":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    turn, _ = await own_turn(owner, "https://api.example.com/v1")

    await run_turn(turn.pk)

    own, _echo = await rows(turn)
    assert (own.status, own.error.split(";")[0]) == (
        Status.ERROR,
        "api.example.com resolves to a private or local address (10.0.0.5)",
    )
    assert asked == ["api.example.com"]  # checked once, and no connection was tried


async def test_a_key_the_vault_cannot_read_fails_its_pane_with_a_sentence(
    owner: Any, fake_server: tuple[FakeOpenAI, str], loopback_allowed: None, settings: Any
) -> None:
    server, base_url = fake_server
    settings.PLAYGROUND_VAULT_KEYS = [Fernet.generate_key().decode()]
    turn, _ = await own_turn(owner, base_url)
    settings.PLAYGROUND_VAULT_KEYS = [Fernet.generate_key().decode()]
    settings.SECRET_KEY = "another secret key, 32 characters or more"

    await run_turn(turn.pk)

    own, _echo = await rows(turn)
    assert own.status == Status.ERROR
    assert own.error.startswith("My vLLM: The saved key cannot be read with this server's vault")
    assert server.requests == []


async def test_a_model_taken_off_the_endpoint_fails_its_pane(
    owner: Any, fake_server: tuple[FakeOpenAI, str], loopback_allowed: None
) -> None:
    server, base_url = fake_server
    turn, endpoint = await own_turn(owner, base_url)
    await CustomEndpoint.objects.filter(pk=endpoint.pk).aupdate(model_ids=["another"])

    await run_turn(turn.pk)

    own, _echo = await rows(turn)
    assert (own.status, own.error) == (
        Status.ERROR,
        f"{MODEL} is no longer one of the models of My vLLM.",
    )
    assert server.requests == []


# ---------------------------------------------------------------- the claim's cost


async def test_own_models_cost_the_claim_one_query_more_and_only_then(
    owner: Any, fake_server: tuple[FakeOpenAI, str], loopback_allowed: None
) -> None:
    _server, base_url = fake_server
    catalog_only = await sync_to_async(make_turn)(owner, [("echo", {}), ("echo", {})])
    with_own, _endpoint = await own_turn(owner, base_url)

    def claim(turn: Turn) -> tuple[int, int, list[Any]]:
        catalog(), provider_limits()  # cached, as in a running worker
        with CaptureQueriesContext(connection) as queries:
            jobs = claim_responses(turn.pk)
        endpoint_reads = sum("customendpoint" in q["sql"] for q in queries.captured_queries)
        return len(queries.captured_queries), endpoint_reads, jobs

    plain, plain_endpoint_reads, _ = await sync_to_async(claim)(catalog_only)
    mine, mine_endpoint_reads, jobs = await sync_to_async(claim)(with_own)

    assert (plain_endpoint_reads, mine_endpoint_reads) == (0, 1)
    assert mine == plain + 1
    # Decrypted here, in the worker, for the call; never shown by a repr (a log line).
    own = jobs[0]
    assert own.request.credentials.api_key == KEY
    assert own.request.base_url == base_url
    assert KEY not in repr(jobs)


# ---------------------------------------------------------------- test connection


async def test_test_connection_calls_the_endpoint_with_its_key_and_says_so(
    owner: Any, fake_server: tuple[FakeOpenAI, str], loopback_allowed: None, aredis: Any
) -> None:
    from playground.worker.connection_check import run_check

    server, base_url = fake_server
    endpoint = await sync_to_async(make_endpoint)(
        owner, name="Lab", base_url=base_url, key=KEY, model_ids=[MODEL]
    )

    await run_check(endpoint_key(endpoint), "pg:conn:own", owner.pk)

    [sentence] = await aredis.lrange("pg:conn:own", 0, -1)
    assert sentence.decode().startswith(f"Lab · {MODEL}: connected; the model answered in")
    [sent] = server.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["json"]["model"] == MODEL
    assert sent["json"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["json"]["max_tokens"] == 1  # the cheapest call


async def test_test_connection_of_someone_elses_endpoint_calls_nothing(
    owner: Any,
    outsider: Any,
    fake_server: tuple[FakeOpenAI, str],
    loopback_allowed: None,
    aredis: Any,
) -> None:
    from playground.worker.connection_check import run_check

    server, base_url = fake_server
    theirs = await sync_to_async(make_endpoint)(outsider, base_url=base_url, key=KEY)

    await run_check(endpoint_key(theirs), "pg:conn:theirs", owner.pk)

    assert await aredis.lrange("pg:conn:theirs", 0, -1) == [
        b"This endpoint was deleted; pick another model."
    ]
    assert server.requests == []


async def test_test_connection_checks_the_base_url_again_before_calling(
    owner: Any, fake_server: tuple[FakeOpenAI, str], settings: Any, aredis: Any
) -> None:
    from playground.worker.connection_check import run_check

    server, base_url = fake_server
    endpoint = await sync_to_async(make_endpoint)(
        owner, name="Lab", base_url=base_url, key=KEY, model_ids=[MODEL]
    )
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = []

    await run_check(endpoint_key(endpoint), "pg:conn:refused", owner.pk)

    [sentence] = await aredis.lrange("pg:conn:refused", 0, -1)
    assert sentence.decode().startswith(
        f"Lab · {MODEL}: failed — 127.0.0.1 resolves to a private or local address"
    )
    assert server.requests == []


def _dns(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """api.example.com resolves to each of ``answers`` in turn (the last one from then on);
    returns the list of names asked."""
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


async def test_a_name_that_turns_private_between_check_and_connection_is_refused(
    owner: Any, fake_server: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: public for the check just before the call, the machine's own address
    a moment later for the connection. The connection is checked on the address it goes
    to: nothing reaches the server on loopback."""
    server, base_url = fake_server
    port = base_url.split(":")[2].split("/")[0]
    asked = _dns(monkeypatch, ["93.184.216.34", "127.0.0.1"])
    turn, _ = await own_turn(owner, f"http://api.example.com:{port}/v1")

    await run_turn(turn.pk)

    own, echo = await rows(turn)
    assert (own.status, own.error.split(";")[0]) == (
        Status.ERROR,
        "api.example.com resolves to a private or local address (127.0.0.1)",
    )
    assert len(asked) == 2  # the check, then the connection's own lookup
    assert server.requests == []
    assert echo.status == Status.DONE


async def test_the_connection_goes_to_the_address_that_was_checked(
    owner: Any, fake_server: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once for the connection and the socket connects to that
    address, not to the name again (here loopback stands for a public address)."""
    server, base_url = fake_server
    port = base_url.split(":")[2].split("/")[0]
    asked = _dns(monkeypatch, ["127.0.0.1"])
    monkeypatch.setattr("playground.egress.is_public", lambda address: True)
    turn, _ = await own_turn(owner, f"http://api.example.com:{port}/v1")

    await run_turn(turn.pk)

    own, _echo = await rows(turn)
    assert (own.status, own.text) == (Status.DONE, "Hello from the fake")
    assert len(asked) == 2
    assert [r["headers"]["host"] for r in server.requests] == [f"api.example.com:{port}"]
