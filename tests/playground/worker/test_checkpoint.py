"""While panes stream, what their logs hold reaches their rows about once a second, every
pane of the worker in one statement, and never over a row that has ended (the checkpoint
the watchdog falls back on when Redis lost a log)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from playground.models import Response, Status
from playground.worker import checkpoint, publisher
from playground.worker.event_loop import context
from playground.worker.response_run import ResponseRun
from providers.base import ChatRequest
from tests.playground.helpers import make_turn, responses_of

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context", "clean_redis"),
]


@sync_to_async
def streaming_rows(owner: Any, panes: int) -> list[Response]:
    turn = make_turn(owner, [("echo", {})] * panes, status=Status.STREAMING)
    return responses_of(turn)


@sync_to_async
def texts(rows: list[Response]) -> list[tuple[str, str, str]]:
    found = dict(
        (pk, (status, text, reasoning))
        for pk, status, text, reasoning in Response.objects.filter(
            pk__in=[r.pk for r in rows]
        ).values_list("pk", "status", "text", "reasoning")
    )
    return [found[r.pk] for r in rows]


def run_of(row: Response) -> ResponseRun:
    return ResponseRun(row.pk, None, ChatRequest(model="m", messages=[]), "Echo")


async def test_streaming_text_reaches_the_rows_once_a_second_in_one_statement(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = await streaming_rows(owner, 3)
    writes: list[tuple[float, list[int]]] = []

    def recorded(parts: list[tuple[int, str, str]]) -> int:
        writes.append((time.monotonic(), [pk for pk, _, _ in parts]))
        return checkpoint.save_partial(parts)

    monkeypatch.setattr(publisher, "save_partial", recorded)
    pub = context().publisher
    runs = [run_of(row) for row in rows]
    for run in runs:
        pub.begin(run)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 3.5:
        n += 1
        for run in runs[:2]:  # the third pane says nothing: nothing to write for it
            pub.add(run, text=f"w{n} ", reasoning="r" if n == 1 else "")
        await asyncio.sleep(0.02)
    await asyncio.sleep(1.2)  # the last words' checkpoint

    # About once a second, never more often, each write for both panes with news at once.
    assert 4 <= len(writes) <= 6
    gaps = [b[0] - a[0] for a, b in zip(writes, writes[1:], strict=False)]
    assert min(gaps) >= 0.9
    assert all(sorted(pks) == sorted(r.pk for r in rows[:2]) for _, pks in writes)
    said = "".join(runs[0].text)
    assert said.startswith("w1 w2 ") and said.endswith(f"w{n} ")
    assert await texts(rows) == [
        (Status.STREAMING, said, "r"),
        (Status.STREAMING, said, "r"),
        (Status.STREAMING, "", ""),
    ]
    for run in runs:
        pub.close(run, "done")
        await run.ended.wait()


async def test_a_checkpoint_never_writes_over_an_ended_row(owner: Any) -> None:
    ended, streaming = await streaming_rows(owner, 2)
    await Response.objects.filter(pk=ended.pk).aupdate(status=Status.DONE, text="The whole answer")

    written = await sync_to_async(checkpoint.save_partial)(
        [(ended.pk, "The whole", ""), (streaming.pk, "Half", "")]
    )

    assert written == 1
    assert await texts([ended, streaming]) == [
        (Status.DONE, "The whole answer", ""),
        (Status.STREAMING, "Half", ""),
    ]
