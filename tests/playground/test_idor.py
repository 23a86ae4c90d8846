"""Every URL and websocket route that takes an object's id or a token refuses an outsider
and someone signed out, and lets no byte of the owner's data through: LibreChat
CVE-2026-31950 (watching another person's stream by guessing ids) and the Open WebUI
CVE-2026-45339 class (reaching a session through an alternate route).

The routes are found by walking the URL resolver and the websocket routing, not listed by
hand: a new route whose parameter this file does not know fails
``test_every_route_parameter_is_known``, so it cannot be added without being checked here.
Django admin (``admin/``) is left out: every one of its views is behind ``admin_view``, and
tests/playground/test_admin_pages.py checks that people who are not staff are sent to its
sign-in page.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from playground import connection_tests
from playground.asgi import application
from playground.credentials import seal_parts
from playground.models import (
    Audience,
    ComparisonSet,
    Credential,
    Membership,
    Response,
    Role,
    Session,
    ShareLink,
    Team,
)
from playground.redis_sync import redis_client
from playground.routing import websocket_urlpatterns
from tests.playground.helpers import make_endpoint
from tests.playground.share_helpers import finished_comparison, link_to

SECRET = "alice-secret-Q7x"  # in every name and text of the owner's that a page could show
# Parameters that name no object: the pane editor's index of a pane in the form.
NOT_OBJECTS = {"position", "n", "frame"}
ORIGIN = (b"origin", b"http://127.0.0.1")


@dataclass
class Owned:
    """One of everything alice owns, each named with SECRET."""

    session: Session
    response: Response
    team: Team
    member: Membership
    endpoint_id: int
    credential: Credential
    comparison_set: ComparisonSet
    link: ShareLink
    share_token: str
    test_token: str

    def value(self, route: str, param: str) -> Any:
        if param == "token":
            return self.test_token if route == "connection_test" else self.share_token
        return {
            "session_id": self.session.pk,
            "pane_id": self.response.pane_id,
            "response_id": self.response.pk,
            "endpoint_id": self.endpoint_id,
            "credential_id": self.credential.pk,
            "team_id": self.team.pk,
            "member_id": self.member.pk,
            "set_id": self.comparison_set.pk,
            "link_id": self.link.pk,
            "turn_id": self.response.turn_id,
            "position": 0,
            "n": 0,
            "frame": 0,
        }[param]


@pytest.fixture
def owned(owner: Any, django_user_model: Any, settings: Any) -> Owned:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 0  # every route is tried, more than 20 times
    settings.PLAYGROUND_SHARE_TRIES_PER_USER = 0
    session = finished_comparison(owner)
    Session.objects.filter(pk=session.pk).update(title=f"{SECRET} title")
    response = Response.objects.filter(turn__session=session).get()
    Response.objects.filter(pk=response.pk).update(text=f"{SECRET} answer")
    team = Team.objects.create(name=f"{SECRET} team")
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-0000")
    member = Membership.objects.create(team=team, user=bob, role=Role.MEMBER)
    endpoint = make_endpoint(owner, name=f"{SECRET} endpoint", key="sk-alice-endpoint-0001")
    credential = Credential(
        scope="user",
        user=owner,
        provider="openai",
        label=f"{SECRET} key",
        base_url="https://api.openai.com/v1",
    )
    seal_parts(credential, {"api_key": "sk-alice-saved-key-0002"})
    credential.save()
    comparison_set = ComparisonSet.objects.create(
        owner=owner, name=f"{SECRET} set", panes=[{"model_key": "echo", "params": {}}]
    )
    link, share_token = link_to(session, Audience.TEAMS)  # alice's teammates only
    test_token, reply = connection_tests.begin(owner.pk, reverse("endpoints"))
    redis_client().rpush(reply, f"{SECRET} endpoint: connected.")
    session.refresh_from_db()
    return Owned(
        session,
        response,
        team,
        member,
        endpoint.pk,
        credential,
        comparison_set,
        link,
        share_token,
        test_token,
    )


def routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(name, pattern) of every named URL of the site outside Django admin that takes a
    parameter."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            yield from routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.pattern.converters:
            assert entry.name, f"{prefix}{entry.pattern} has no name"
            yield entry.name, entry


def url_of(owned: Owned, name: str, pattern: URLPattern) -> str:
    params = {p: owned.value(name, p) for p in pattern.pattern.converters}
    return reverse(name, kwargs=params)


def test_every_route_parameter_is_known(owned: Owned) -> None:
    """A new route that takes an id or a token must be added to ``Owned.value`` (and so to
    the checks below) before this passes."""
    found = sorted(name for name, _ in routes())
    assert len(found) > 40  # the walk reached the site's routes
    for name, pattern in routes():
        for param in pattern.pattern.converters:
            try:
                owned.value(name, param)
            except KeyError:
                pytest.fail(f"route {name!r} takes {param!r}, which this test does not know")
    for route in websocket_urlpatterns:
        assert set(route.pattern.converters) <= {"session_id", "token"}, route.pattern


def leaked(body: bytes) -> bool:
    return SECRET.encode() in body or b"sk-alice-" in body


def check_owner_untouched(owned: Owned) -> None:
    session = Session.objects.get(pk=owned.session.pk)
    assert session.deleted_at is None and session.title == f"{SECRET} title"
    assert Response.objects.get(pk=owned.response.pk).text == f"{SECRET} answer"
    assert Membership.objects.get(pk=owned.member.pk).role == Role.MEMBER
    assert Credential.objects.get(pk=owned.credential.pk).enabled
    assert ComparisonSet.objects.get(pk=owned.comparison_set.pk).name == f"{SECRET} set"
    assert ShareLink.objects.get(pk=owned.link.pk).revoked_at is None
    assert session.panes.count() == 1


@pytest.mark.django_db
def test_librechat_cve_2026_31950_every_route_refuses_an_outsider(
    owned: Owned, outsider: Any
) -> None:
    """Signed in, not alice, not in her team: 403/404 (405 for the other method) on every
    route with her real ids and tokens, and none of her bytes."""
    browser = Client()
    browser.force_login(outsider)
    for name, pattern in routes():
        url = url_of(owned, name, pattern)
        for method in ("get", "post"):
            for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
                answer = getattr(browser, method)(url, **htmx)
                assert not leaked(answer.content), f"{method.upper()} {url} leaked"
                if set(pattern.pattern.converters) <= NOT_OBJECTS:
                    continue
                assert answer.status_code in {403, 404, 405}, (
                    f"{method.upper()} {url} as an outsider: {answer.status_code}"
                )
    check_owner_untouched(owned)


@pytest.mark.django_db
def test_open_webui_cve_2026_45339_every_route_refuses_someone_signed_out(owned: Owned) -> None:
    """No alternate route: each one sends someone signed out to sign in, or is not found."""
    browser = Client()
    for name, pattern in routes():
        url = url_of(owned, name, pattern)
        for method in ("get", "post"):
            answer = getattr(browser, method)(url)
            assert not leaked(answer.content), f"{method.upper()} {url} leaked"
            if answer.status_code == 302:
                assert answer["Location"].startswith(reverse("login")), url
            else:
                assert answer.status_code in {403, 404, 405}, (
                    f"{method.upper()} {url} signed out: {answer.status_code}"
                )
    check_owner_untouched(owned)


@pytest.mark.django_db
def test_guessed_ids_next_to_the_owners_are_refused_too(owned: Owned, outsider: Any) -> None:
    """Ids one past alice's (nobody's yet): the same refusal, never a server error."""
    browser = Client()
    browser.force_login(outsider)
    for name, pattern in routes():
        params = {
            p: (owned.value(name, p) + 1000 if p not in NOT_OBJECTS | {"token"} else None)
            for p in pattern.pattern.converters
        }
        if "token" in params:
            params["token"] = secrets.token_urlsafe(32)
        if None in params.values():
            continue
        url = reverse(name, kwargs=params)
        for method in ("get", "post"):
            status = getattr(browser, method)(url).status_code
            assert status in {403, 404, 405}, f"{method.upper()} {url}: {status}"


def cookie_for(user: Any) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("consumer_redis")
@pytest.mark.parametrize("who", ["outsider", "anonymous"])
async def test_librechat_cve_2026_31950_every_websocket_route_refuses_a_guessed_id(
    owned: Owned, outsider: Any, who: str
) -> None:
    """Alice's real session id, her teammates-only link's token, and a guessed token: the
    socket is refused with 4404 and sends nothing."""
    headers = [ORIGIN]
    if who == "outsider":
        headers.append(await sync_to_async(cookie_for)(outsider))
    for route in websocket_urlpatterns:
        tried = []
        for param in route.pattern.converters:
            if param == "session_id":
                tried.append(str(route.pattern).replace("<int:session_id>", str(owned.session.pk)))
            else:
                for token in (owned.share_token, secrets.token_urlsafe(32)):
                    tried.append(str(route.pattern).replace("<str:token>", token))
        assert tried, route.pattern
        for path in tried:
            ws = WebsocketCommunicator(application, f"/{path}", headers=headers)
            ok, code = await ws.connect(timeout=5)
            assert (ok, code) == (False, 4404), path
            assert await ws.receive_nothing(timeout=0.2)
            await ws.wait(timeout=1)
