"""Send: the form is validated as a whole, a turn is saved with one pending response per
pane, the turn is announced on the session's control stream and handed to Celery by id."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import pytest
from django.urls import reverse

from playground.live.fragments import turn_articles
from playground.models import Pane, Response, Session, Status, Turn
from tests.playground.helpers import make_turn, send_form

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _empty_celery_queue(clean_redis: Any) -> None:
    """clean_redis removes only the playground's keys; earlier tests' task messages stay on
    Celery's queue (no worker runs here), so empty it to see this test's messages alone."""
    clean_redis.delete("celery")


def counts() -> tuple[int, int, int, int]:
    return (
        Session.objects.count(),
        Pane.objects.count(),
        Turn.objects.count(),
        Response.objects.count(),
    )


def celery_messages(redis: Any) -> list[bytes]:
    """The raw messages Celery put on the broker's default queue (a Redis list)."""
    return list(redis.lrange("celery", 0, -1))


def task_call(raw: bytes) -> tuple[str, list[Any], dict[str, Any]]:
    message = json.loads(raw)
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return message["headers"]["task"], args, kwargs


# ---------------------------------------------------------------- success


def test_new_session_saves_everything_and_redirects(owner_client: Any, clean_redis: Any) -> None:
    form = send_form(
        "Compare these two",
        panes=[("echo", {"temperature": 0.2}), ("echo", {"temperature": 1.0})],
        system_prompt="Be brief.",
    )
    response = owner_client.post(reverse("send_new"), form, **HTMX)

    session = Session.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/s/{session.pk}/"
    assert session.title == "Compare these two"
    assert session.system_prompt == "Be brief."
    panes = list(session.panes.order_by("position"))
    assert [(p.position, p.model_key, p.params, p.removed) for p in panes] == [
        (0, "echo", {"temperature": 0.2}, False),
        (1, "echo", {"temperature": 1.0}, False),
    ]
    turn = Turn.objects.get()
    assert (turn.session_id, turn.index, turn.prompt, turn.system_prompt) == (
        session.pk,
        0,
        "Compare these two",
        "Be brief.",
    )
    responses = list(turn.responses.order_by("pane__position"))
    assert [(r.pane_id, r.model_key, r.display_name, r.params, r.status) for r in responses] == [
        (panes[0].pk, "echo", "Echo", {"temperature": 0.2}, Status.PENDING),
        (panes[1].pk, "echo", "Echo", {"temperature": 1.0}, Status.PENDING),
    ]
    # Announced to the pages following the session (none yet: the page is loaded next,
    # with the turn in it, so the announcement carries no articles).
    control = clean_redis.xrange(f"pg:ctl:{session.pk}")
    ids = ",".join(str(r.pk) for r in responses).encode()
    assert [fields for _id, fields in control] == [{b"turn": str(turn.pk).encode(), b"ids": ids}]


def test_follow_up_adds_turn_one_with_a_response_per_pane(
    owner: Any, owner_client: Any, clean_redis: Any, settings: Any
) -> None:
    first = make_turn(owner, [("echo", {}), ("echo", {"delay_ms": 5})], "First", status="done")
    session = first.session
    form = send_form("Second", panes=[("echo", {}), ("echo", {"delay_ms": 5})])

    response = owner_client.post(reverse("send", args=[session.pk]), form, **HTMX)

    assert response.status_code == 200
    turn = Turn.objects.get(session=session, index=1)
    assert response["X-Turn-Id"] == str(turn.pk)
    assert json.loads(response["HX-Trigger"]) == {"turn-sent": {}}
    assert response["HX-Retarget"] == "#compose-errors"
    assert "HX-Redirect" not in response
    assert turn.prompt == "Second"
    assert Session.objects.count() == 1
    assert Pane.objects.filter(session=session).count() == 2
    assert sorted(turn.responses.values_list("pane__position", "status")) == [
        (0, Status.PENDING),
        (1, Status.PENDING),
    ]
    # The announcement carries the new turn's articles, exactly as a follower would render
    # them from the database.
    [(_id, fields)] = clean_redis.xrange(f"pg:ctl:{session.pk}")
    saved = list(turn.responses.select_related("turn", "pane").order_by("pane__position"))
    assert fields == {
        b"turn": str(turn.pk).encode(),
        b"ids": ",".join(str(r.pk) for r in saved).encode(),
        b"html": turn_articles(saved).encode(),
    }
    assert fields[b"html"].count(b"<article ") == 2
    assert b'<div class="prompt">Second</div>' in fields[b"html"]
    # It holds the prompt: it expires with the pane logs, not never.
    assert 0 < clean_redis.ttl(f"pg:ctl:{session.pk}") <= settings.PLAYGROUND_LOG_TTL
    [raw] = celery_messages(clean_redis)
    assert task_call(raw)[1] == [turn.pk, sorted(turn.responses.values_list("pk", flat=True))]


def test_celery_message_carries_ids_only(
    owner_client: Any, clean_redis: Any, settings: Any
) -> None:
    settings.PLAYGROUND_PROVIDER_KEYS = {"OPENAI_API_KEY": "sk-test-secret-123"}
    prompt = "Tell me the recipe for my grandmother's secret soup"
    form = send_form(prompt, panes=[("openai:gpt-5", {}), ("echo", {})], system_prompt="Sys!")

    response = owner_client.post(reverse("send_new"), form, **HTMX)

    assert response.status_code == 200, response.content
    turn = Turn.objects.get()
    [raw] = celery_messages(clean_redis)
    name, args, kwargs = task_call(raw)
    response_ids = sorted(turn.responses.values_list("pk", flat=True))
    assert (name, args[0], sorted(args[1]), kwargs) == (
        "playground.run_turn",
        turn.pk,
        response_ids,
        {},
    )
    assert len(args) == 2 and len(response_ids) == 2
    body = base64.b64decode(json.loads(raw)["body"])
    for secret in (b"sk-test-secret-123", b"secret soup", b"grandmother", b"Sys!"):
        assert secret not in raw
        assert secret not in body


# ---------------------------------------------------------------- refused


def _too_long(settings: Any) -> dict[str, Any]:
    settings.PLAYGROUND_MAX_PROMPT_CHARS = 1000
    return send_form("x" * 1234)


ERRORS = [
    ("empty prompt", lambda s: send_form("   \n "), "Write a prompt first."),
    (
        "prompt too long",
        _too_long,
        "The prompt is 1,234 characters long; the limit is 1,000.",
    ),
    (
        "temperature out of range",
        lambda s: send_form(panes=[("echo", {"temperature": 0.5}), ("echo", {"temperature": 5})]),
        "Pane 2: Echo: Temperature must be a number from 0 to 2; got 5.",
    ),
    (
        "unknown model",
        lambda s: send_form(panes=[("echo", {}), ("acme:brainiac", {})]),
        "Pane 2: unknown model 'acme:brainiac'.",
    ),
    (
        "remote model without a key",
        lambda s: send_form(panes=[("openai:gpt-5", {})]),
        "Pane 1: OpenAI · GPT-5 needs a key: add your OpenAI key under Keys, or ask a team "
        "admin to share one.",
    ),
    (
        "nine panes",
        lambda s: send_form(panes=[("echo", {})] * 9),
        "Compare at most 8 models at once.",
    ),
    (
        "unknown parameter",
        lambda s: send_form(panes=[("echo", {"bogus": 1})]),
        "Pane 1: Echo: Unknown parameter: bogus.",
    ),
]


@pytest.mark.parametrize(("build", "sentence"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_refused_send_says_why_and_saves_nothing(
    owner_client: Any,
    clean_redis: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    build: Any,
    sentence: str,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    response = owner_client.post(reverse("send_new"), build(settings), **HTMX)

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#compose-errors"
    assert response["HX-Reswap"] == "innerHTML"
    assert "HX-Redirect" not in response
    body = response.content.decode()
    assert f"<li>{html.escape(sentence)}</li>" in body
    assert body.count("<li>") == 1
    assert counts() == (0, 0, 0, 0)
    assert celery_messages(clean_redis) == []
    assert clean_redis.keys("pg:*") == []


@pytest.mark.parametrize("position", ["²", "x", "-1", "1000", ""])
def test_a_malformed_pane_position_is_not_a_pane(
    owner_client: Any, clean_redis: Any, position: str
) -> None:
    form = send_form()
    form["pane"] = [position]
    form[f"pane-{position}-model"] = "echo"

    response = owner_client.post(reverse("send_new"), form, **HTMX)

    assert response.status_code == 200
    assert "<li>Add at least one model.</li>" in response.content.decode()
    assert counts() == (0, 0, 0, 0)


def test_refused_follow_up_leaves_the_session_as_it_was(
    owner: Any, owner_client: Any, clean_redis: Any
) -> None:
    first = make_turn(owner, [("echo", {})], "First", status="done")
    before = counts()
    form = send_form("Second", panes=[("echo", {"temperature": 5}), ("echo", {})])

    response = owner_client.post(reverse("send", args=[first.session_id]), form, **HTMX)

    assert "Temperature must be a number from 0 to 2" in response.content.decode()
    assert counts() == before
    assert list(Pane.objects.values_list("position", "removed")) == [(0, False)]
    assert celery_messages(clean_redis) == []


def test_anonymous_is_sent_to_login_and_nothing_is_saved(client: Any, clean_redis: Any) -> None:
    response = client.post(reverse("send_new"), send_form(), **HTMX)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/send/"
    assert counts() == (0, 0, 0, 0)
    assert celery_messages(clean_redis) == []
