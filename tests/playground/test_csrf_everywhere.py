"""CSRF on every state-changing request, and websockets only from this site's pages.

Every URL pattern the site has (its own and the admin's, walked from the URLconf, so a new
view is covered the day it is added) refuses a POST, PUT, PATCH or DELETE that carries no
CSRF token, from a signed-in superuser: no view is exempt. Every websocket route refuses a
connection from another site's page (its Origin) or with none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

from playground.models import Audience
from playground.routing import websocket_urlpatterns
from tests.playground.helpers import make_turn
from tests.playground.share_helpers import link_to

_CONVERTER = re.compile(r"<(?:(\w+):)?\w+>")
_GROUP = re.compile(r"\(\?P<\w+>([^)]*)\)")


def concrete(pattern: Any) -> str:
    """A path the pattern matches: ids 1, words "x", an alternation's first choice."""
    if isinstance(pattern, RoutePattern):
        return _CONVERTER.sub(lambda m: "1" if m.group(1) in {"int", "path"} else "x", str(pattern))
    assert isinstance(pattern, RegexPattern)
    text = _GROUP.sub(
        lambda m: "x" if m.group(1) in {".*", ".+"} else m.group(1).split("|")[0],
        pattern.regex.pattern,
    )
    return text.lstrip("^").rstrip("$").replace("\\", "")


def every_path(patterns: list[Any] | None = None, prefix: str = "/") -> Iterator[tuple[str, Any]]:
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from every_path(entry.url_patterns, prefix + concrete(entry.pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + concrete(entry.pattern), entry.callback


PATHS = sorted(set(every_path()), key=lambda pair: pair[0])


def test_the_walk_finds_every_view() -> None:
    paths = [path for path, _view in PATHS]
    assert len(paths) > 100  # the site's ~75 and the admin's
    for expected in ["/s/1/send/", "/keys/1/delete/", "/login/", "/admin/login/",
                     "/admin/playground/credential/1/change/", "/shared/x/fork/"]:  # fmt: skip
        assert expected in paths


@pytest.fixture
def superuser_client(django_user_model: Any) -> Client:
    admin = django_user_model.objects.create(username="root", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("path", [p for p, _v in PATHS])
def test_no_state_changing_request_without_a_csrf_token(
    superuser_client: Client, path: str
) -> None:
    assert resolve(path.split("?")[0])  # the walk made a path the site serves
    for method in ("post", "put", "patch", "delete"):
        response = getattr(superuser_client, method)(
            path, data={"x": "1"} if method == "post" else ""
        )
        assert response.status_code == 403, (method.upper(), path, response.status_code)
        assert b"CSRF" in response.content, (method.upper(), path)


@pytest.mark.django_db
def test_with_its_token_the_same_request_goes_through(superuser_client: Client) -> None:
    """The refusal above is the CSRF check's, not the view's: with the token, it passes."""
    superuser_client.get("/teams/")
    token = superuser_client.cookies["csrftoken"].value

    response = superuser_client.post("/teams/", {"name": "Research"}, HTTP_X_CSRFTOKEN=token)

    assert response.status_code != 403


# ---------------------------------------------------------------- websockets' Origin


def _cookie(user: Any) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())


def test_every_websocket_route_is_tested_below() -> None:
    assert [str(p.pattern) for p in websocket_urlpatterns] == [
        "ws/sessions/<int:session_id>/",
        "ws/shared/<str:token>/",
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("consumer_redis")
@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (b"http://127.0.0.1", True),
        (b"https://evil.example", False),
        (b"http://127.0.0.1.evil.example", False),
        (b"null", False),
        (None, False),
    ],
)
async def test_websockets_only_from_this_site_s_pages(
    owner: Any, origin: bytes | None, accepted: bool
) -> None:
    """A page on another site cannot open a signed-in person's socket with their cookie
    (cross-site websocket hijacking): the Origin must be one of ALLOWED_HOSTS."""
    from playground.asgi import application

    @sync_to_async
    def routes() -> list[str]:
        turn = make_turn(owner, [("echo", {})], "Hello")
        _link, token = link_to(turn.session, Audience.ANYONE)
        return [f"/ws/sessions/{turn.session_id}/", f"/ws/shared/{token}/"]

    cookie = await sync_to_async(_cookie)(owner)
    for path in await routes():
        headers = [cookie] + ([(b"origin", origin)] if origin is not None else [])
        ws = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await ws.connect(timeout=5)
        assert connected is accepted, (path, origin)
        await ws.disconnect()
