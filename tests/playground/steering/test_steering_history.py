"""Conversation control, asserted on the requests the models receive: follow-ups to chosen
panes only, continuing from a chosen answer, the three context policies, regenerate and
retry, and a removed pane's answers never reaching another model."""

from __future__ import annotations

import json
from typing import Any

import pytest
import respx
from asgiref.sync import sync_to_async
from django.urls import reverse

from playground.models import Pane, Response, Session, Status, Turn
from tests.playground.helpers import run_turn
from tests.playground.steering.local_models import HTMX, Models, a, form, u

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]


@sync_to_async
def post(client: Any, url: str, data: dict | None = None) -> Any:
    return client.post(url, data or {}, **HTMX)


async def send(client: Any, session: Session | None, data: dict) -> Turn:
    url = reverse("send", args=[session.pk]) if session else reverse("send_new")
    answer = await post(client, url, data)
    assert answer.status_code == 200, answer.content
    assert b"compose-errors" not in answer.content or not answer.content.strip()
    turn = await Turn.objects.select_related("session").alatest("pk")
    await run_turn(turn.pk)
    return turn


@sync_to_async
def answers(turn: Turn) -> dict[int, Response]:
    return {
        r.pane.position: r for r in turn.responses.filter(replaced=False).select_related("pane")
    }


async def test_a_follow_up_to_chosen_panes_asks_only_them(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1"))
        models.take()
        second = await send(owner_client, first.session, form("Q2", asked=[0, 2]))
        sent = models.take()
        assert set(sent) == {"A", "C"}  # B sat this turn out
        assert sorted(await answers(second)) == [0, 2]
        await send(owner_client, first.session, form("Q3"))
        sent = models.take()
    assert sent["A"] == [u("Q1"), a("A1"), u("Q2"), a("A2"), u("Q3")]
    # B was not asked Q2: it is not told it was.
    assert sent["B"] == [u("Q1"), a("B1"), u("Q3")]


async def test_no_pane_ticked_is_refused_and_nothing_is_saved(owner_client: Any) -> None:
    with respx.mock() as mock:
        Models(mock)
        first = await send(owner_client, None, form("Q1"))
    before = await Response.objects.acount()
    url = reverse("send", args=[first.session_id])
    answer = await post(owner_client, url, form("Q2", asked=[]))
    assert "Tick at least one pane to ask." in answer.content.decode()
    assert await Response.objects.acount() == before


async def test_continue_from_one_answer_gives_it_to_every_model(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1"))
        b = (await answers(first))[1]
        chosen = await post(owner_client, reverse("choose", args=[b.pk]))
        assert "Chosen: the next turns continue from this answer" in chosen.content.decode()
        models.take()
        await send(owner_client, first.session, form("Q2"))
        sent = models.take()
    for letter in "ABC":
        assert sent[letter] == [u("Q1"), a("B1"), u("Q2")]


async def test_continue_with_that_model_only(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1"))
        c = (await answers(first))[2]
        chosen = await post(owner_client, reverse("choose", args=[c.pk]) + "?only=1")
        # The page is told to tick only that pane.
        assert json.loads(chosen["HX-Trigger"]) == {"ask-only": {"position": 2}}
        models.take()
        await send(owner_client, first.session, form("Q2", asked=[2]))
        sent = models.take()
    assert sent == {"C": [u("Q1"), a("C1"), u("Q2")]}


async def test_the_chosen_policy_leaves_turns_without_a_choice_out(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1", context_policy="chosen"))
        models.take()
        second = await send(owner_client, first.session, form("Q2"))
        # Nothing was chosen in turn 1: no model is told of it.
        assert all(m == [u("Q2")] for m in models.take().values())
        await post(owner_client, reverse("choose", args=[(await answers(second))[0].pk]))
        models.take()
        await send(owner_client, first.session, form("Q3"))
        sent = models.take()
    for letter in "ABC":  # A's answer to Q2 was "A1": it had been asked one question
        assert sent[letter] == [u("Q2"), a("A1"), u("Q3")]


async def test_the_all_policy_shares_every_answer_but_the_excluded(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1", context_policy="all"))
        b = (await answers(first))[1]
        left_out = await post(owner_client, reverse("exclude", args=[b.pk]))
        assert "Left out of the shared history" in left_out.content.decode()
        models.take()
        await send(owner_client, first.session, form("Q2"))
        sent = models.take()
    shared = "[Local · SmolLM2-135M]\nA1\n\n[Local · SmolLM2-135M]\nC1"
    for letter in "ABC":
        assert sent[letter] == [u("Q1"), a(shared), u("Q2")]


async def test_the_policy_is_changed_from_the_composer(owner_client: Any) -> None:
    with respx.mock() as mock:
        Models(mock)
        first = await send(owner_client, None, form("Q1"))
    url = reverse("context_policy", args=[first.session_id])
    changed = await post(owner_client, url, {"context_policy": "all"})
    assert json.loads(changed["HX-Trigger"]) == {"policy-changed": {"policy": "all"}}
    wrong = await post(owner_client, url, {"context_policy": "everything"})
    assert "Pick what the models see" in wrong.content.decode()
    session = await Session.objects.aget(pk=first.session_id)
    assert session.context_policy == "all"


async def test_regenerate_replaces_the_answer_in_history(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1", panes=2))
        old = (await answers(first))[0]
        models.take()
        again = await post(owner_client, reverse("regenerate", args=[old.pk]))
        assert again.status_code == 200 and again.content == b""
        new = await Response.objects.aget(turn=first, pane_id=old.pane_id, replaced=False)
        assert new.pk != old.pk and new.status == Status.PENDING
        await run_turn(first.pk)
        sent = models.take()
        assert sent == {"A": [u("Q1")]}  # only that pane, asked the same turn again
        await send(owner_client, first.session, form("Q2", panes=2))
        sent = models.take()
    old = await Response.objects.aget(pk=old.pk)
    assert old.replaced and old.text == "A1"  # kept on record
    new = await Response.objects.aget(pk=new.pk)
    assert new.status == Status.DONE
    assert sent["A"] == [u("Q1"), a("A1"), u("Q2")]  # the new answer (same text, new row)
    assert await Response.objects.filter(turn=first).acount() == 3


async def test_an_earlier_turn_cannot_be_regenerated(owner_client: Any) -> None:
    with respx.mock() as mock:
        Models(mock)
        first = await send(owner_client, None, form("Q1", panes=1))
        await send(owner_client, first.session, form("Q2", panes=1))
    old = (await answers(first))[0]
    refused = await post(owner_client, reverse("regenerate", args=[old.pk]))
    assert "Only answers to the last turn can be answered again" in refused.content.decode()
    assert await Response.objects.filter(turn=first).acount() == 1


async def test_retry_failed_answers_only_the_failed_panes(owner_client: Any) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        models.fail = {"B"}
        first = await send(owner_client, None, form("Q1"))
        assert (await answers(first))[1].status == Status.ERROR
        models.take()
        models.fail = set()
        retried = await post(owner_client, reverse("retry_failed", args=[first.session_id]))
        assert retried.status_code == 200
        await run_turn(first.pk)
        sent = models.take()
    assert sent == {"B": [u("Q1")]}
    now = await answers(first)
    assert [now[p].text for p in range(3)] == ["A1", "B1", "C1"]
    nothing = await post(owner_client, reverse("retry_failed", args=[first.session_id]))
    assert "there is nothing to retry" in nothing.content.decode()


async def test_a_removed_panes_answers_never_reach_the_model_added_in_its_place(
    owner_client: Any,
) -> None:
    with respx.mock() as mock:
        models = Models(mock)
        first = await send(owner_client, None, form("Q1", panes=2))
        # B is removed; the next Send has A alone.
        await send(owner_client, first.session, form("Q2", panes=1))
        models.take()
        # A model is added at the place B had (as a page that removed it and added
        # another before sending would post it).
        await send(owner_client, first.session, form("Q3", panes=2))
        sent = models.take()
    assert sent["B"] == [u("Q3")]  # none of the removed pane's history
    assert sent["A"] == [u("Q1"), a("A1"), u("Q2"), a("A2"), u("Q3")]
    rows = [p async for p in Pane.objects.filter(session=first.session, position=1)]
    assert sorted(p.removed for p in rows) == [False, True]  # a row of its own


async def test_a_new_pane_never_takes_a_removed_panes_place(owner_client: Any) -> None:
    with respx.mock() as mock:
        Models(mock)
        first = await send(owner_client, None, form("Q1", panes=3))
    # The page shows panes 0 and 1 (2 was removed a moment ago, not yet sent).
    url = reverse("pane_editor") + f"?pane=0&pane=1&session={first.session_id}"
    added = await sync_to_async(owner_client.get)(url, **HTMX)
    body = added.content.decode()
    assert 'id="pane-3"' in body
    assert "Joins now: it sees none of the 1 earlier turn, only answers chosen" in body
