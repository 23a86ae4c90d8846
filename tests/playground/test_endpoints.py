"""Your endpoints: a person saves their own OpenAI-compatible server (name, base URL,
optional key, model ids); its models show in their Model picker only; the key is stored
encrypted, is never shown back, and no page (admin included) contains it."""

from __future__ import annotations

import base64
import html
import json
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground import vault
from playground.forms import KEY_AGAIN, MALFORMED_KEY, URL_CHANGED
from playground.models import CustomEndpoint, Pane, Response, Session, Turn
from playground.own_models import model_key, models_for_user, parse_model_key
from tests.playground.helpers import endpoint_key, make_endpoint, make_turn, send_form

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
KEY = "sk-live-Zq8vXw3NmT5pL0a1b2"
MODEL = "meta-llama/Llama-3.1-8B:free"


@pytest.fixture(autouse=True)
def _private_test_hosts(settings: Any) -> None:
    """vllm.internal and gateway.internal are allowed by the site admin (so no test here
    depends on DNS); anything else must be public."""
    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = ["vllm.internal", "gateway.internal"]


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """api.example.com resolves to a public address, without a network."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "api.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def alice(owner: Any) -> Client:
    browser = Client()
    browser.force_login(owner)
    return browser


def endpoint_form(**fields: str) -> dict[str, str]:
    return {
        "name": "My vLLM",
        "base_url": "http://vllm.internal:8000/v1",
        "api_key": KEY,
        "model_ids": f"{MODEL}\nQwen/Qwen2.5-7B-Instruct\n",
        **fields,
    }


def raw_rows() -> list[tuple[Any, ...]]:
    """The endpoint table as the database holds it, every column."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM playground_customendpoint")
        return list(cursor.fetchall())


def snapshot() -> list[tuple[Any, ...]]:
    return list(
        CustomEndpoint.objects.order_by("pk").values_list(
            "pk", "name", "base_url", "key_ciphertext", "key_hint", "model_ids"
        )
    )


# ---------------------------------------------------------------- adding


def test_adding_an_endpoint_keeps_only_ciphertext_and_a_hint(owner: Any, alice: Client) -> None:
    response = alice.post(reverse("endpoints"), endpoint_form())

    assert response.status_code == 302
    assert response["Location"] == reverse("endpoints")
    endpoint = CustomEndpoint.objects.get()
    assert (endpoint.owner_id, endpoint.name, endpoint.base_url, endpoint.model_ids) == (
        owner.pk,
        "My vLLM",
        "http://vllm.internal:8000/v1",
        [MODEL, "Qwen/Qwen2.5-7B-Instruct"],
    )
    assert endpoint.key_hint == "…a1b2"
    assert vault.decrypt(endpoint.key_ciphertext) == KEY
    [row] = raw_rows()
    for column in row:
        assert KEY not in str(column)
        assert KEY[-12:] not in str(column)
    page = alice.get(reverse("endpoints")).content.decode()
    assert "Saved My vLLM; its models are in your Model picker." in page
    assert "…a1b2" in page
    assert KEY not in page and endpoint.key_ciphertext not in page


def test_adding_through_htmx_answers_with_the_list_and_an_empty_form(alice: Client) -> None:
    response = alice.post(reverse("endpoints"), endpoint_form(), **HTMX)

    assert response.status_code == 200
    assert response["HX-Push-Url"] == reverse("endpoints")
    body = response.content.decode()
    assert body.lstrip().startswith('<main class="endpoints" id="endpoints-main">')
    assert "<html" not in body
    assert "<td>My vLLM</td>" in body
    assert 'name="name" value=""' in body
    assert KEY not in body


def test_a_public_server_is_accepted_and_its_url_normalized(
    alice: Client, public_dns: None
) -> None:
    response = alice.post(
        reverse("endpoints"), endpoint_form(base_url="https://api.example.com/v1/", api_key="")
    )

    assert response.status_code == 302
    endpoint = CustomEndpoint.objects.get()
    assert (endpoint.base_url, endpoint.key_ciphertext, endpoint.key_hint) == (
        "https://api.example.com/v1",
        "",
        "",
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "http://127.0.0.1:8081/v1",
            "127.0.0.1 resolves to a private or local address (127.0.0.1)",
        ),
        ("http://10.0.0.5/v1", "10.0.0.5 resolves to a private or local address (10.0.0.5)"),
        (
            "http://169.254.169.254/latest",
            "169.254.169.254 resolves to a private or local address (169.254.169.254)",
        ),
        ("http://[::1]:8000/v1", "::1 resolves to a private or local address (::1)"),
        ("http://localhost:11434/v1", "localhost resolves to a private or local address ("),
    ],
)
def test_a_private_or_local_base_url_is_refused_unless_an_admin_allowed_the_host(
    alice: Client, settings: Any, url: str, says: str
) -> None:
    response = alice.post(reverse("endpoints"), endpoint_form(base_url=url))

    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert says in body
    assert "only public servers can be used here" in body
    assert KEY_AGAIN in body
    assert CustomEndpoint.objects.count() == 0

    settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS = [urlsplit(url).hostname]
    response = alice.post(reverse("endpoints"), endpoint_form(base_url=url))

    assert response.status_code == 302, response.content.decode()
    assert CustomEndpoint.objects.get().base_url == url.rstrip("/")


REFUSALS = [
    ("no name", {"name": "  "}, "name", "Give the endpoint a name."),
    ("long name", {"name": "n" * 81}, "name", "The name can be at most 80 characters long."),
    ("no base URL", {"base_url": ""}, "base_url", "Give the server's base URL"),
    ("ftp", {"base_url": "ftp://vllm.internal/v1"}, "base_url", "must start with http://"),
    (
        "credentials in the URL",
        {"base_url": "https://me:pw@vllm.internal/v1"},
        "base_url",
        "Put credentials in the key field, not in the base URL.",
    ),
    ("no model", {"model_ids": " \n \n"}, "model_ids", "List at least one model id"),
    (
        "21 models",
        {"model_ids": "\n".join(f"m{i}" for i in range(21))},
        "model_ids",
        "List at most 20 model ids; there are 21.",
    ),
    (
        "model id with a space",
        {"model_ids": "gpt 4"},
        "model_ids",
        "The model id “gpt 4” contains a space or a control character",
    ),
    (
        "model id with a control character",
        {"model_ids": "gpt\x074"},
        "model_ids",
        "contains a space or a control character",
    ),
    (
        "model id too long",
        {"model_ids": "m" * 201},
        "model_ids",
        "is longer than 200 characters.",
    ),
    ("key with a space", {"api_key": "sk-abc def"}, "api_key", MALFORMED_KEY),
    ("key with a control character", {"api_key": "sk-abc\x1bdef"}, "api_key", MALFORMED_KEY),
    ("key too long", {"api_key": "k" * 501}, "api_key", MALFORMED_KEY),
]


@pytest.mark.parametrize(
    ("fields", "field", "sentence"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_refused_form_says_why_saves_nothing_and_keeps_what_was_typed_but_the_key(
    alice: Client, fields: dict[str, str], field: str, sentence: str
) -> None:
    form = endpoint_form(**fields)

    response = alice.post(reverse("endpoints"), form, **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert sentence in html.unescape(body)
    assert CustomEndpoint.objects.count() == 0
    if field != "name":
        assert f'name="name" value="{html.escape(form["name"])}"' in body
    if field != "base_url":
        assert f'value="{html.escape(form["base_url"])}"' in body
    if field != "model_ids":
        assert f">{html.escape(form['model_ids'])}</textarea>" in body
    # The key is never filled back in; the person is asked for it again.
    assert 'name="api_key" type="password" value=""' in body
    assert form["api_key"] not in body
    assert "Enter the key again" in body


def test_a_refused_form_without_a_key_does_not_ask_for_one(alice: Client) -> None:
    response = alice.post(reverse("endpoints"), endpoint_form(name="", api_key=""))

    assert "Give the endpoint a name." in response.content.decode()
    assert "Enter the key again" not in response.content.decode()


def test_a_name_is_yours_once(owner: Any, alice: Client) -> None:
    make_endpoint(owner, name="My vLLM")
    before = snapshot()

    response = alice.post(reverse("endpoints"), endpoint_form())

    assert "You already have an endpoint named “My vLLM”." in response.content.decode()
    assert snapshot() == before


def test_two_people_may_use_the_same_name(outsider: Any, alice: Client) -> None:
    make_endpoint(outsider, name="My vLLM")

    assert alice.post(reverse("endpoints"), endpoint_form()).status_code == 302
    assert CustomEndpoint.objects.filter(name="My vLLM").count() == 2


# ---------------------------------------------------------------- editing and deleting


def test_the_edit_form_shows_everything_but_the_key(owner: Any, alice: Client) -> None:
    endpoint = make_endpoint(owner, key=KEY, model_ids=[MODEL, "other"])

    body = alice.get(reverse("endpoint_edit", args=[endpoint.pk])).content.decode()

    assert 'value="My vLLM"' in body
    assert 'value="http://vllm.internal:8000/v1"' in body
    assert f">{MODEL}\nother</textarea>" in body
    assert 'name="api_key" type="password" value=""' in body
    assert "Saved key …a1b2: leave the field empty to keep it." in body
    assert "Changing the base URL needs the key entered again." in body
    assert KEY not in body and endpoint.key_ciphertext not in body


def test_an_empty_key_field_keeps_the_saved_key(owner: Any, alice: Client) -> None:
    endpoint = make_endpoint(owner, key=KEY)
    token = endpoint.key_ciphertext

    response = alice.post(
        reverse("endpoint_edit", args=[endpoint.pk]),
        endpoint_form(name="Renamed", api_key="", model_ids="a\nb"),
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.model_ids, endpoint.key_ciphertext) == (
        "Renamed",
        ["a", "b"],
        token,
    )


def test_a_new_key_replaces_the_saved_one(owner: Any, alice: Client) -> None:
    endpoint = make_endpoint(owner, key=KEY)

    alice.post(
        reverse("endpoint_edit", args=[endpoint.pk]), endpoint_form(api_key="sk-new-key-9999zz")
    )

    endpoint.refresh_from_db()
    assert vault.decrypt(endpoint.key_ciphertext) == "sk-new-key-9999zz"
    assert endpoint.key_hint == "…99zz"


def test_changing_the_base_url_needs_the_key_again(owner: Any, alice: Client) -> None:
    endpoint = make_endpoint(owner, key=KEY)
    before = snapshot()
    url = reverse("endpoint_edit", args=[endpoint.pk])
    moved = endpoint_form(base_url="http://gateway.internal/v1", api_key="")

    response = alice.post(url, moved, **HTMX)

    assert html.unescape(response.content.decode()).count(URL_CHANGED) == 1
    assert snapshot() == before

    alice.post(url, {**moved, "remove_key": "on"})
    endpoint.refresh_from_db()
    assert (endpoint.base_url, endpoint.key_ciphertext, endpoint.key_hint) == (
        "http://gateway.internal/v1",
        "",
        "",
    )

    alice.post(url, {**moved, "base_url": "http://vllm.internal/v2", "api_key": KEY})
    endpoint.refresh_from_db()
    assert endpoint.base_url == "http://vllm.internal/v2"
    assert vault.decrypt(endpoint.key_ciphertext) == KEY


def test_deleting_an_endpoint(owner: Any, alice: Client) -> None:
    endpoint = make_endpoint(owner, key=KEY)
    other = make_endpoint(owner, name="Other")

    assert alice.get(reverse("endpoint_delete", args=[endpoint.pk])).status_code == 405
    response = alice.post(reverse("endpoint_delete", args=[endpoint.pk]), **HTMX)

    assert response.status_code == 200
    assert "Deleted My vLLM." in response.content.decode()
    assert list(CustomEndpoint.objects.values_list("pk", flat=True)) == [other.pk]


# ---------------------------------------------------------------- access


def test_an_outsider_cannot_see_change_or_delete_an_endpoint(
    owner: Any, outsider_client: Any
) -> None:
    endpoint = make_endpoint(owner, name="Alice lab", key=KEY)
    before = snapshot()
    edit = reverse("endpoint_edit", args=[endpoint.pk])

    assert outsider_client.get(edit).status_code == 404
    assert outsider_client.post(edit, endpoint_form(name="Mine now", api_key="")).status_code == 404
    assert outsider_client.post(reverse("endpoint_delete", args=[endpoint.pk])).status_code == 404
    assert snapshot() == before
    assert "Alice lab" not in outsider_client.get(reverse("endpoints")).content.decode()


def test_anonymous_is_sent_to_sign_in(owner: Any, client: Client) -> None:
    endpoint = make_endpoint(owner)
    for url in (reverse("endpoints"), reverse("endpoint_edit", args=[endpoint.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    client.post(reverse("endpoint_delete", args=[endpoint.pk]))
    assert CustomEndpoint.objects.count() == 1


def test_admin_pages_show_the_hint_and_never_the_key(owner: Any, admin_client: Client) -> None:
    endpoint = make_endpoint(owner, key=KEY)
    pages = [
        reverse("admin:playground_customendpoint_changelist"),
        reverse("admin:playground_customendpoint_change", args=[endpoint.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert "My vLLM" in body and "…a1b2" in body
        assert KEY not in body
        assert endpoint.key_ciphertext not in body
        assert endpoint.key_ciphertext[:24] not in body
    assert admin_client.get(reverse("admin:playground_customendpoint_add")).status_code == 403


# ---------------------------------------------------------------- the Model picker and Send


def test_keys_of_own_models() -> None:
    assert model_key(12, "meta/llama:free") == "mine:12:meta/llama:free"
    assert parse_model_key("mine:12:meta/llama:free") == (12, "meta/llama:free")
    for key in ("mine:x:y", "mine:12:", "mine:12", "openai:gpt-5", "mine:١٢:m", "echo", ""):
        assert parse_model_key(key) is None


def test_own_models_are_in_your_picker_only(
    owner: Any, alice: Client, outsider_client: Any
) -> None:
    endpoint = make_endpoint(owner, model_ids=[MODEL, "other/model"])
    key = endpoint_key(endpoint)
    option = f'<option value="{html.escape(key)}">My vLLM · {html.escape(MODEL)}</option>'

    assert option in alice.get(reverse("home")).content.decode()
    assert option in alice.get(reverse("pane_editor")).content.decode()
    params = alice.get(reverse("pane_params", args=[0]), {"pane-0-model": key}).content.decode()
    assert 'name="pane-0-p-temperature"' in params
    assert f'data-model="{html.escape(key)}"' in params
    assert key not in outsider_client.get(reverse("home")).content.decode()
    assert key not in outsider_client.get(reverse("pane_editor")).content.decode()

    [model] = [m for m in models_for_user(owner).values() if m.key == key]
    assert (model.display_name, model.provider, model.model_id, model.base_url) == (
        f"My vLLM · {MODEL}",
        "openai_compatible",
        MODEL,
        "http://vllm.internal:8000/v1",
    )


def test_the_page_header_links_to_your_endpoints(alice: Client) -> None:
    body = alice.get(reverse("home")).content.decode()
    assert f'<a href="{reverse("endpoints")}">Your endpoints</a>' in body


def test_send_with_an_own_model_saves_its_name_and_enqueues_ids_only(
    owner: Any, alice: Client, clean_redis: Any
) -> None:
    clean_redis.delete("celery")
    endpoint = make_endpoint(owner, key=KEY)
    key = endpoint_key(endpoint)

    response = alice.post(
        reverse("send_new"), send_form(panes=[(key, {"temperature": 0.3}), ("echo", {})]), **HTMX
    )

    assert response.status_code == 200, response.content.decode()
    turn = Turn.objects.get()
    assert list(
        turn.responses.order_by("pane__position").values_list("model_key", "display_name")
    ) == [
        (key, f"My vLLM · {MODEL}"),
        ("echo", "Echo"),
    ]
    [raw] = clean_redis.lrange("celery", 0, -1)
    message = json.loads(raw)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == (
        [turn.pk, sorted(turn.responses.values_list("pk", flat=True))],
        {},
    )
    for secret in (KEY, endpoint.key_ciphertext, KEY[-10:]):
        assert secret not in raw.decode()
        assert secret not in base64.b64decode(message["body"]).decode()


def test_someone_elses_model_is_unknown_at_send_and_nothing_is_saved(
    owner: Any, outsider_client: Any, clean_redis: Any
) -> None:
    clean_redis.delete("celery")
    key = endpoint_key(make_endpoint(owner, key=KEY))

    response = outsider_client.post(reverse("send_new"), send_form(panes=[(key, {})]), **HTMX)

    assert (
        f"<li>Pane 1: {html.escape(repr(MODEL))} is not a model of any of your endpoints; "
        "pick another model.</li>"
    ) in response.content.decode()
    assert (Session.objects.count(), Pane.objects.count(), Response.objects.count()) == (0, 0, 0)
    assert clean_redis.lrange("celery", 0, -1) == []


def test_a_pane_whose_endpoint_was_deleted_keeps_its_model_and_a_follow_up_is_refused(
    owner: Any, alice: Client, clean_redis: Any
) -> None:
    """The page must not quietly select another model for the pane (a browser selects the
    first option when none is): the next Send would ask a model nobody picked."""
    clean_redis.delete("celery")
    endpoint = make_endpoint(owner, key=KEY)
    key = endpoint_key(endpoint)
    turn = make_turn(owner, [(key, {}), ("echo", {})], status="done")
    turn.responses.filter(model_key=key).update(display_name="Team gateway · gpt-4.1-mini")
    endpoint.delete()

    page = alice.get(reverse("session", args=[turn.session_id])).content.decode()

    assert '<section class="pane" id="pane-0" role="region" aria-label="Team gateway' in page
    assert (
        f'<option value="{html.escape(key)}" selected>Team gateway · gpt-4.1-mini '
        "(no longer available)</option>"
    ) in page
    pickers = re.findall(r'<select name="pane-\d+-model".*?</select>', page, flags=re.S)
    # One model selected in each pane's picker: this one, and the echo pane's.
    assert [p.count(" selected>") for p in pickers] == [1, 1]
    follow_up = send_form("And now?", panes=[(key, {}), ("echo", {})])
    response = alice.post(reverse("send", args=[turn.session_id]), follow_up, **HTMX)
    assert (
        f"<li>Pane 1: {html.escape(repr(MODEL))} is not a model of any of your endpoints; "
        "pick another model.</li>"
    ) in response.content.decode()
    assert Turn.objects.filter(session_id=turn.session_id).count() == 1
    assert clean_redis.lrange("celery", 0, -1) == []


def test_a_send_reads_own_endpoints_only_when_a_pane_names_one(
    owner: Any, alice: Client, clean_redis: Any
) -> None:
    key = endpoint_key(make_endpoint(owner))
    alice.post(reverse("send_new"), send_form(panes=[("echo", {})]), **HTMX)  # warm the catalog

    def endpoint_queries(panes: list[tuple[str, dict[str, Any]]]) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = alice.post(reverse("send_new"), send_form(panes=panes), **HTMX)
        assert response.status_code == 200
        return sum("playground_customendpoint" in q["sql"] for q in queries.captured_queries)

    assert endpoint_queries([("echo", {})]) == 0
    assert endpoint_queries([(key, {}), ("echo", {}), (key, {})]) == 1


def test_the_test_connection_button_asks_a_worker_with_ids_only(
    owner: Any, outsider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row's button: the task names the model and the owner (never the key); the click
    is answered at once with a fragment that asks for the sentence a second later, and
    that ask brings the worker's sentence. Someone else's endpoint is not found and nothing
    is asked; someone else's test is not found either."""
    from playground.redis_sync import redis_client
    from playground.tasks import check_connection

    asked: list[tuple[Any, ...]] = []

    def worker(*args: Any) -> None:  # stands in for the worker: records only
        asked.append(args)

    monkeypatch.setattr(check_connection, "delay", worker)
    endpoint = make_endpoint(owner, name="Lab", key=KEY, model_ids=["first", "second"])
    url = reverse("endpoint_test", args=[endpoint.pk])

    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.post(url, {"model": "second"}, **HTMX).status_code == 404
    assert asked == []

    browser = Client()
    browser.force_login(owner)
    clicked = browser.post(url, {"model": "second"}, **HTMX)

    assert clicked.status_code == 200
    [(key, reply_to, owner_id)] = asked
    assert (key, owner_id) == (endpoint_key(endpoint, 1), owner.pk)
    assert KEY not in repr(asked)
    waiting = clicked.content.decode()
    [poll] = re.findall(r'hx-get="([^"]+)" hx-trigger="load delay:1s"', waiting)
    assert ">testing…</span>" in waiting
    assert browser.get(poll, **HTMX).content.decode() == waiting  # not answered yet

    redis_client().rpush(reply_to, "Lab · second: connected; the model answered in 0.1 s.")
    answered = browser.get(poll, **HTMX)
    assert answered.content.decode() == (
        '<span class="test-result">Lab · second: connected; the model answered in 0.1 s.</span>'
    )
    assert stranger.get(poll, **HTMX).status_code == 404  # the test is the owner's only
    signed_out = Client().get(poll, **HTMX)
    assert signed_out.status_code == 302 and "/login/" in signed_out["Location"]

    # Without htmx: the test's own page, which shows the sentence when it has come.
    page = browser.post(url, {"model": "nope"}, follow=True)
    assert asked[-1][0] == endpoint_key(endpoint, 0)  # an unknown model: the first one
    assert page.redirect_chain[0][0].startswith("/connection-tests/")
    assert '<meta http-equiv="refresh" content="1">' in page.content.decode()
    redis_client().rpush(asked[-1][1], "Lab · first: connected; the model answered in 0.1 s.")
    again = browser.get(page.redirect_chain[0][0]).content.decode()
    assert "Lab · first: connected" in html.unescape(again)
    assert 'http-equiv="refresh"' not in again
