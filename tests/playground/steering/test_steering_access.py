"""Who may steer a session: the owner only. Every steering URL with the owner, a teammate,
an outsider and an anonymous visitor; two clicks at once; fork."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from playground.models import Response, Session, Status, Turn
from tests.playground.helpers import make_turn
from tests.playground.team_personas import browser, research_team

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


def ended_session(owner: Any) -> tuple[Session, list[Response]]:
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "Q1", status=Status.DONE)
    Response.objects.filter(turn=turn).update(text="an answer")
    second = make_turn(owner, [("echo", {}), ("echo", {})], "Q2", session=turn.session)
    Response.objects.filter(turn=second).update(status=Status.ERROR, error="broke")
    return turn.session, list(Response.objects.filter(turn=second).order_by("pane__position"))


def urls(session: Session, answer: Response) -> list[tuple[str, dict[str, str]]]:
    return [
        (reverse("regenerate", args=[answer.pk]), {}),
        (reverse("retry_failed", args=[session.pk]), {}),
        (reverse("choose", args=[answer.pk]), {}),
        (reverse("exclude", args=[answer.pk]), {}),
        (reverse("context_policy", args=[session.pk]), {"context_policy": "all"}),
        (reverse("fork", args=[session.pk]) + "?turn=0", {}),
        (reverse("pane_editor") + f"?pane=0&session={session.pk}", {}),
    ]


def snapshot(session: Session) -> tuple[Any, ...]:
    session.refresh_from_db()
    return (
        Session.objects.count(),
        Response.objects.count(),
        session.context_policy,
        list(Turn.objects.filter(session=session).values_list("chosen_id", flat=True)),
        list(Response.objects.filter(excluded=True).values_list("pk", flat=True)),
    )


def test_only_the_owner_may_steer(django_user_model: Any, owner: Any, outsider: Any) -> None:
    team = research_team(django_user_model, owner, outsider)
    session, (answer, _) = ended_session(owner)
    before = snapshot(session)
    for person in (team.member, team.admin, outsider, None):
        client = browser(person)
        for url, data in urls(session, answer):
            got = client.get(url, **HTMX) if "pane/new" in url else client.post(url, data, **HTMX)
            if person is None:  # sent to sign in
                assert got.status_code == 302 and "/login/" in got["Location"], url
            else:  # the session is missing to them, teammates included
                assert got.status_code == 404, (url, person)
    assert snapshot(session) == before


def test_the_owner_steers_and_a_deleted_session_is_missing(owner: Any) -> None:
    session, (answer, _) = ended_session(owner)
    client = browser(owner)
    first = Response.objects.filter(turn__session=session, text="an answer").first()
    assert first is not None
    chosen = client.post(reverse("choose", args=[first.pk]), **HTMX)
    assert chosen.status_code == 200 and "Stop continuing from this" in chosen.content.decode()
    assert Turn.objects.get(pk=first.turn_id).chosen_id == first.pk
    Session.objects.filter(pk=session.pk).update(deleted_at="2026-01-01T00:00:00Z")
    assert client.post(reverse("exclude", args=[answer.pk]), **HTMX).status_code == 404
    assert client.post(reverse("retry_failed", args=[session.pk]), **HTMX).status_code == 404


def test_an_empty_answer_offers_nothing_to_continue_from_and_cannot_be_chosen(
    owner: Any,
) -> None:
    """A pane refused before its call, or failed with no word, has no text to carry on."""
    session, (failed, _) = ended_session(owner)
    client = browser(owner)
    page = client.get(reverse("session", args=[session.pk])).content.decode()
    article = page[page.index(f'id="response-{failed.pk}"') :]
    article = article[: article.index("</article>")]
    assert "Retry" in article and "Continue from this" not in article
    assert "with this model only" not in article
    refused = client.post(reverse("choose", args=[failed.pk]), **HTMX)
    assert "This answer is empty; continue from one that has text." in refused.content.decode()
    assert Turn.objects.get(pk=failed.turn_id).chosen_id is None


def test_two_retries_at_once_answer_again_once(owner: Any, clean_redis: Any) -> None:
    session, failed = ended_session(owner)
    count = 6
    barrier = threading.Barrier(count)
    bodies: list[str] = [""] * count

    def one(index: int) -> None:
        client = Client()
        client.force_login(owner)
        try:
            barrier.wait()
            got = client.post(reverse("retry_failed", args=[session.pk]), **HTMX)
            bodies[index] = got.content.decode()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    last = Turn.objects.get(session=session, index=1)
    assert Response.objects.filter(turn=last).count() == 4  # two failed, two new: once
    assert Response.objects.filter(turn=last, replaced=False, status=Status.PENDING).count() == 2
    refusals = [b for b in bodies if b]
    assert len(refusals) == count - 1
    assert all(
        "already answered again" in b or "still answering" in b or "nothing to retry" in b
        for b in refusals
    ), refusals


def test_fork_from_a_turn_copies_it_and_what_came_before(owner: Any) -> None:
    session, _ = ended_session(owner)
    first = Turn.objects.get(session=session, index=0)
    chosen = Response.objects.filter(turn=first).first()
    Turn.objects.filter(pk=first.pk).update(chosen=chosen)
    client = browser(owner)
    got = client.post(reverse("fork", args=[session.pk]) + "?turn=0", **HTMX)
    copy = Session.objects.exclude(pk=session.pk).get()
    assert got["HX-Redirect"] == reverse("session", args=[copy.pk])
    assert copy.owner == owner and copy.forked_from == session and copy.forked_at_turn == 0
    assert "(fork at turn 1)" in copy.title
    turns = list(copy.turns.all())
    assert [t.prompt for t in turns] == ["Q1"]
    copied = list(Response.objects.filter(turn__session=copy).order_by("pane__position"))
    assert [r.text for r in copied] == ["an answer", "an answer"]
    assert turns[0].chosen_id == copied[0].pk  # the choice comes along, on the copy's rows
    page = client.get(reverse("session", args=[copy.pk])).content.decode()
    # The prompts as the page shows them ("Q2" alone can turn up in a random token).
    assert page.count("an answer") >= 2 and '<div class="prompt">Q1</div>' in page
    assert '<div class="prompt">Q2</div>' not in page
    # Nothing of the original changed.
    assert Response.objects.filter(turn__session=session).count() == 4
    missing = client.post(reverse("fork", args=[session.pk]) + "?turn=9", **HTMX)
    assert "That turn is not in this session." in missing.content.decode()
