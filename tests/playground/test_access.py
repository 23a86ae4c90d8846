"""Someone else's session, pane, turn or response does not exist for you: 404, never 403,
and nothing of it changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.test import Client
from django.urls import reverse

from playground import access
from playground.models import Response, Status, Turn
from tests.playground.helpers import make_endpoint, make_turn, responses_of, send_form

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def owners_turn(owner: Any) -> Turn:
    """Alice's session: one pane streaming, one still queued."""
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "Alice's private question")
    first, second = responses_of(turn)
    Response.objects.filter(pk=first.pk).update(status=Status.STREAMING)
    make_endpoint(owner)
    return turn


@pytest.fixture
def alice(owner: Any) -> Client:
    """Alice's own browser (owner_client and outsider_client share one test client)."""
    browser = Client()
    browser.force_login(owner)
    return browser


def snapshot(turn: Turn) -> list[tuple[Any, ...]]:
    return list(
        Response.objects.filter(turn__session=turn.session)
        .order_by("pk")
        .values_list("pk", "status", "text", "finish_reason", "finished_at")
    )


def test_outsider_cannot_see_the_session_page(owners_turn: Turn, outsider_client: Any) -> None:
    response = outsider_client.get(reverse("session", args=[owners_turn.session_id]))

    assert response.status_code == 404
    assert "Alice&#x27;s private question" not in response.content.decode()
    assert "Alice's private question" not in response.content.decode()


def test_owner_sees_the_session_page(owners_turn: Turn, alice: Client) -> None:
    response = alice.get(reverse("session", args=[owners_turn.session_id]))

    assert response.status_code == 200
    assert "Alice&#x27;s private question" in response.content.decode()


def test_outsider_cannot_send_into_the_session(
    owners_turn: Turn, outsider_client: Any, clean_redis: Any
) -> None:
    form = send_form("Mallory was here", panes=[("echo", {})])

    response = outsider_client.post(reverse("send", args=[owners_turn.session_id]), form, **HTMX)

    assert response.status_code == 404
    assert Turn.objects.count() == 1
    assert not Turn.objects.filter(prompt="Mallory was here").exists()
    assert list(owners_turn.session.panes.values_list("position", "removed")) == [
        (0, False),
        (1, False),
    ]
    assert clean_redis.xlen(f"pg:ctl:{owners_turn.session_id}") == 0


@pytest.mark.parametrize("url_name", ["stop_session", "stop_pane"])
def test_outsider_cannot_stop_anything(
    owners_turn: Turn, outsider_client: Any, clean_redis: Any, url_name: str
) -> None:
    streaming, pending = responses_of(owners_turn)
    target = owners_turn.session_id if url_name == "stop_session" else streaming.pane_id
    before = snapshot(owners_turn)

    response = outsider_client.post(reverse(url_name, args=[target]))

    assert response.status_code == 404
    assert snapshot(owners_turn) == before
    assert clean_redis.exists(f"pg:stop:{streaming.pk}", f"pg:stop:{pending.pk}") == 0
    assert clean_redis.exists(f"pg:log:{pending.pk}") == 0


@pytest.mark.parametrize("url_name", ["stop_session", "stop_pane"])
def test_owner_can_stop(owners_turn: Turn, alice: Client, clean_redis: Any, url_name: str) -> None:
    """The same requests from the owner do act (so the 404s above are about ownership)."""
    streaming, pending = responses_of(owners_turn)
    target = owners_turn.session_id if url_name == "stop_session" else streaming.pane_id

    response = alice.post(reverse(url_name, args=[target]))

    assert response.status_code == 204
    assert clean_redis.get(f"pg:stop:{streaming.pk}") == b"1"


def test_unknown_ids_are_404_too(alice: Client) -> None:
    assert alice.get(reverse("session", args=[987654])).status_code == 404
    assert alice.post(reverse("stop_session", args=[987654])).status_code == 404
    assert alice.post(reverse("stop_pane", args=[987654])).status_code == 404


# ---------------------------------------------------------------- playground.access


def test_access_functions_give_the_owner_their_objects(owner: Any, owners_turn: Turn) -> None:
    response = responses_of(owners_turn)[0]
    session = owners_turn.session

    assert access.session_for_user(owner, session.pk) == session
    assert access.session_for_user(owner, str(session.pk)) == session
    assert access.pane_for_user(owner, response.pane_id) == response.pane
    endpoint = owner.endpoints.get()
    assert access.endpoint_for_user(owner, str(endpoint.pk)) == endpoint


CHECKS = [
    ("session", access.session_for_user, lambda t, r: t.session_id),
    ("pane", access.pane_for_user, lambda t, r: r.pane_id),
    ("endpoint", access.endpoint_for_user, lambda t, r: t.session.owner.endpoints.get().pk),
]


@pytest.mark.parametrize(
    ("check", "object_id"), [c[1:] for c in CHECKS], ids=[c[0] for c in CHECKS]
)
def test_access_functions_hide_objects_from_others(
    outsider: Any, owners_turn: Turn, check: Any, object_id: Any
) -> None:
    real_id = object_id(owners_turn, responses_of(owners_turn)[0])

    with pytest.raises(Http404):
        check(outsider, real_id)
    with pytest.raises(Http404):
        check(AnonymousUser(), real_id)
    with pytest.raises(Http404):
        check(None, real_id)


@pytest.mark.parametrize("garbage", ["", "abc", "1.5", "-1", "1; DROP TABLE x", None, "²", 10**30])
@pytest.mark.parametrize("check", [c[1] for c in CHECKS], ids=[c[0] for c in CHECKS])
def test_access_functions_refuse_garbage_ids(
    owner: Any, owners_turn: Turn, check: Any, garbage: Any
) -> None:
    with pytest.raises(Http404):
        check(owner, garbage)
