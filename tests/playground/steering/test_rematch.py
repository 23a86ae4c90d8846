"""Rematch: every turn asked again of another model, in a new session beside the old
answers; the new model's history is its own conversation, turn after turn."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest
import respx
from django.urls import reverse

from playground.models import ACTIVE_STATUSES, Response, Session, Status, Turn
from playground.tasks import run_turn
from playground.worker import rematch_run
from tests.playground.conftest import _close_connections_in
from tests.playground.steering.local_models import HTMX, LOCAL, Models, a, form, u

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worker_loop_executor() -> Any:
    """The worker loop (playground.worker.event_loop, started by the tasks run here) reads
    rows on its executor's threads: an executor this test owns, to close their database
    connections after it (PostgreSQL drops the test database only once they are closed)."""
    from playground.worker import event_loop

    async def use(executor: ThreadPoolExecutor) -> None:
        asyncio.get_running_loop().set_default_executor(executor)

    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rematch-test-db")
    event_loop.run(use(executor))
    yield
    _close_connections_in(executor)
    event_loop.run(use(ThreadPoolExecutor(thread_name_prefix="worker-loop")))  # for later runs
    executor.shutdown(wait=True)


def send(client: Any, session: Session | None, data: dict[str, Any]) -> Turn:
    url = reverse("send", args=[session.pk]) if session else reverse("send_new")
    assert client.post(url, data, **HTMX).status_code == 200
    turn = Turn.objects.select_related("session").latest("pk")
    run_turn(turn.pk)  # the task's body, on the worker's loop
    # The task gives its thread back once no pane streams: a pane still waiting for the local
    # model's one slot goes on on the loop. The turn is over when every pane has ended.
    deadline = time.monotonic() + 20
    while Response.objects.filter(turn=turn, status__in=ACTIVE_STATUSES).exists():
        assert time.monotonic() < deadline, "the turn did not end within 20 s"
        time.sleep(0.02)
    return turn


def test_a_rematch_asks_every_turn_again_beside_the_old_answers(owner_client: Any) -> None:
    with respx.mock() as router:
        models = Models(router)
        first = send(owner_client, None, form("Q1", panes=2))
        send(owner_client, first.session, form("Q2", panes=2))
        models.take()
        with mock.patch("playground.tasks.run_rematch.delay") as delay:
            started = owner_client.post(
                reverse("rematch", args=[first.session_id]),
                {"rematch-model": [LOCAL, ""]},
                **HTMX,
            )
        copy = Session.objects.exclude(pk=first.session_id).get()
        assert started["HX-Redirect"] == reverse("session", args=[copy.pk])
        assert copy.title.startswith("Rematch: Q1")
        (args,) = [c.args for c in delay.call_args_list]
        rematch_run.run(*args)  # what the worker does with the task
        sent = [m for m in models.bodies]
    assert [b["messages"] for b in sent] == [
        [u("Q1")],
        [u("Q1"), a("N1"), u("Q2")],
    ]  # only the new model was asked, each turn once its earlier one had ended
    rows = {
        (r.pane.position, r.turn.index): r
        for r in Response.objects.filter(turn__session=copy).select_related("pane", "turn")
    }
    assert {k: r.text for k, r in rows.items()} == {
        (0, 0): "A1",
        (1, 0): "B1",
        (0, 1): "A2",
        (1, 1): "B2",
        (2, 0): "N1",
        (2, 1): "N2",
    }
    assert all(r.status == Status.DONE for r in rows.values())
    page = owner_client.get(reverse("session", args=[copy.pk])).content.decode()
    assert page.count('class="pane"') == 3 and "N2" in page and "B2" in page


def test_a_rematch_without_a_model_or_over_the_pane_limit_is_refused(
    owner_client: Any, settings: Any
) -> None:
    with respx.mock() as router:
        Models(router)
        first = send(owner_client, None, form("Q1", panes=2))
    url = reverse("rematch", args=[first.session_id])
    none = owner_client.post(url, {"rematch-model": ["", ""]}, **HTMX)
    assert "Pick at least one model to rematch against." in none.content.decode()
    settings.PLAYGROUND_MAX_PANES = 3
    many = owner_client.post(url, {"rematch-model": [LOCAL, LOCAL]}, **HTMX)
    assert "pick at most 1" in many.content.decode()
    assert Session.objects.count() == 1


def test_only_the_owner_may_rematch(owner: Any, outsider_client: Any) -> None:
    session = Session.objects.create(owner=owner, title="Mine")
    got = outsider_client.post(
        reverse("rematch", args=[session.pk]), {"rematch-model": [LOCAL]}, **HTMX
    )
    assert got.status_code == 404 and Session.objects.count() == 1
