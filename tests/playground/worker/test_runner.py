"""playground.worker.runner.run_turn, driven directly on the test's event loop with the real Redis
and database: panes stream at once, the log is the exact record, stop, errors, endpoint
limits and redelivered tasks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async
from django.conf import settings

from playground.live import response_log
from playground.models import Response, Status, Turn
from playground.worker.runner import claim_responses, stream_responses
from providers.echo import count_tokens
from tests.playground.helpers import (
    Outage,
    PaneDef,
    decoded,
    make_turn,
    responses_of,
    run_turn,
    sse_chunks,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_context"),
]

LOCAL = "local:smollm2"
LOCAL_NAME = "Local · SmolLM2-135M"


@sync_to_async
def new_turn(
    owner: Any,
    panes: Sequence[PaneDef],
    prompt: str = "one two three four five six",
    **kwargs: Any,
) -> Turn:
    return make_turn(owner, panes, prompt, **kwargs)


@sync_to_async
def rows(turn: Turn) -> list[Response]:
    return responses_of(turn)


async def log_of(redis: Any, response_id: int) -> list[tuple[str, dict[str, str]]]:
    return decoded(await redis.xrange(response_log.log_key(response_id)))


def merged_text(entries: list[tuple[str, dict[str, str]]]) -> str:
    return response_log.merge(entries).text  # type: ignore[arg-type]


def local_url() -> str:
    return f"{settings.PLAYGROUND_LOCAL_MODEL_URL}/chat/completions"


def sse_response(frames: list[bytes], pause: float = 0.0, done: list[float] | None = None) -> Any:
    """An SSE response whose frames arrive ``pause`` seconds apart; appends the time its
    last frame went out to ``done``."""

    async def body() -> AsyncIterator[bytes]:
        for number, frame in enumerate(frames, start=1):
            if pause:
                await asyncio.sleep(pause)
            if done is not None and number == len(frames):
                done.append(time.monotonic())
            yield frame

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


# ---------------------------------------------------------------- echo panes


async def test_panes_stream_at_once_and_end_with_full_rows(owner: Any, aredis: Any) -> None:
    prompt = "one two three four five six"
    # The slow pane comes first: run one after the other, the fast one would end last.
    turn = await new_turn(owner, [("echo", {"delay_ms": 70}), ("echo", {"delay_ms": 14})])

    await run_turn(turn.pk)

    slow, fast = await rows(turn)
    expected = f"Echo #1: {prompt}"
    words = count_tokens(expected)  # 8 words: 7 pauses each
    for row in (slow, fast):
        assert row.status == Status.DONE
        assert row.text == expected
        assert row.finish_reason == "stop"
        assert row.error == ""
        assert row.usage_estimated is False
        assert (row.input_tokens, row.output_tokens) == (count_tokens(prompt), words)
        assert row.ttft_ms is not None and row.total_ms is not None
        assert row.started_at is not None and row.finished_at is not None
        assert row.ttft_ms < row.total_ms
    assert fast.finished_at < slow.finished_at  # one after the other, it would end last
    assert slow.total_ms >= 7 * 70
    assert fast.total_ms < slow.total_ms / 2
    # Both had their first token long before the slow one was done.
    assert slow.ttft_ms < slow.total_ms / 3
    assert fast.ttft_ms < slow.total_ms / 3
    assert slow.started_at < fast.finished_at


async def test_the_log_is_numbered_without_gaps_and_holds_the_answer(
    owner: Any, aredis: Any
) -> None:
    turn = await new_turn(owner, [("echo", {"delay_ms": 30}), ("echo", {"delay_ms": 0})])

    await run_turn(turn.pk)

    for row in await rows(turn):
        entries = await log_of(aredis, row.pk)
        assert [i for i, _ in entries] == [f"0-{n}" for n in range(1, len(entries) + 1)]
        assert entries[-1][1] == {"k": "e", "st": "done"}
        assert [f["k"] for _, f in entries[:-1]] == ["d"] * (len(entries) - 1)
        assert merged_text(entries) == row.text
        # Token counts and times only grow.
        counts = [int(f["n"]) for _, f in entries[:-1]]
        assert counts == sorted(counts)
        assert counts[-1] == row.output_tokens
        assert int(entries[0][1]["ttft"]) == row.ttft_ms
        # Ended logs expire; nobody is beating for the pane any more.
        assert 0 < await aredis.ttl(response_log.log_key(row.pk)) <= settings.PLAYGROUND_LOG_TTL
        assert not await aredis.exists(response_log.heartbeat_key(row.pk))


@pytest.mark.parametrize("delay_ms", [0, 1])
async def test_deltas_are_coalesced(owner: Any, aredis: Any, delay_ms: int) -> None:
    prompt = "alpha beta gamma delta epsilon"
    turn = await new_turn(owner, [("echo", {"delay_ms": delay_ms, "repeat": 60})], prompt)

    await run_turn(turn.pk)

    [row] = await rows(turn)
    words = count_tokens(row.text)
    assert words == 2 + 5 * 60
    entries = await log_of(aredis, row.pk)
    assert len(entries) < words / 10
    assert merged_text(entries) == row.text == "Echo #1: " + " ".join([prompt] * 60)


async def test_a_stop_flag_ends_the_pane_quickly_keeping_the_partial_text(
    owner: Any, aredis: Any
) -> None:
    prompt = "a b c d e f g h i j"
    turn = await new_turn(
        owner, [("echo", {"delay_ms": 40, "repeat": 20}), ("echo", {"delay_ms": 5})], prompt
    )
    stopped, other = await rows(turn)
    task = asyncio.create_task(run_turn(turn.pk))
    try:
        for _ in range(200):  # wait until the answer is visibly under way
            if len(merged_text(await log_of(aredis, stopped.pk)).split()) >= 5:
                break
            await asyncio.sleep(0.02)
        await aredis.set(response_log.stop_key(stopped.pk), 1)
        flagged = time.monotonic()
        await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
        took = time.monotonic() - flagged
    finally:
        if not task.done():
            task.cancel()
    assert took < 1.0

    stopped, other = await rows(turn)
    full = "Echo #1: " + " ".join([prompt] * 20)
    assert stopped.status == Status.STOPPED
    assert stopped.finish_reason == "stopped"
    assert 5 <= len(stopped.text.split()) < len(full.split()) / 2
    assert full.startswith(stopped.text)
    entries = await log_of(aredis, stopped.pk)
    assert entries[-1][1] == {"k": "e", "st": "stopped"}
    assert merged_text(entries) == stopped.text
    # The other pane did not notice.
    assert other.status == Status.DONE
    assert other.text == f"Echo #1: {prompt}"


async def test_a_task_delivered_twice_runs_no_pane_twice(owner: Any, aredis: Any) -> None:
    turn = await new_turn(owner, [("echo", {"delay_ms": 0}), ("echo", {"delay_ms": 5})])
    await run_turn(turn.pk)
    first_rows = [
        (r.pk, r.status, r.text, r.started_at, r.finished_at, r.total_ms) for r in await rows(turn)
    ]
    first_logs = [await log_of(aredis, r[0]) for r in first_rows]

    await run_turn(turn.pk)

    assert [
        (r.pk, r.status, r.text, r.started_at, r.finished_at, r.total_ms) for r in await rows(turn)
    ] == first_rows
    assert [await log_of(aredis, r[0]) for r in first_rows] == first_logs


async def test_the_task_claims_only_its_own_turns_pending_responses(
    owner: Any, aredis: Any
) -> None:
    """The Celery task carries its responses' ids; an id of another turn, or of a response
    already run, is never claimed through it."""
    turn = await new_turn(owner, [("echo", {"delay_ms": 0}), ("echo", {"delay_ms": 0})])
    other = await new_turn(owner, [("echo", {"delay_ms": 0})], prompt="someone else")
    ids = [r.pk for r in await rows(turn)]
    [other_id] = [r.pk for r in await rows(other)]

    jobs = await sync_to_async(claim_responses)(turn.pk, [ids[0], other_id])
    await stream_responses(jobs)

    assert [job.response_id for job in jobs] == [ids[0]]
    first, second = await rows(turn)
    assert (first.status, first.text) == (Status.DONE, "Echo #1: one two three four five six")
    assert second.status == Status.PENDING
    [untouched] = await rows(other)
    assert (untouched.status, untouched.text) == (Status.PENDING, "")
    assert await sync_to_async(claim_responses)(turn.pk, [ids[0]]) == []  # run already


async def test_a_pane_stopped_before_it_started_is_not_run(owner: Any, aredis: Any) -> None:
    turn = await new_turn(owner, [("echo", {}), ("echo", {})])
    skipped, ran = await rows(turn)
    await sync_to_async(Response.objects.filter(pk=skipped.pk).update)(status=Status.STOPPED)

    await run_turn(turn.pk)

    skipped, ran = await rows(turn)
    assert (skipped.status, skipped.text) == (Status.STOPPED, "")
    assert await log_of(aredis, skipped.pk) == []
    assert ran.status == Status.DONE


# ---------------------------------------------------------------- an OpenAI-compatible model


async def test_a_follow_up_sends_the_panes_own_history(owner: Any, aredis: Any) -> None:
    bodies: list[dict[str, Any]] = []
    answers = iter(["Four.", "Twelve."])

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return sse_response(sse_chunks([next(answers)]))

    with respx.mock(assert_all_called=True) as mock:
        mock.post(local_url()).mock(side_effect=answer)
        first = await new_turn(owner, [(LOCAL, {}), ("echo", {})], "What is two plus two?")
        await run_turn(first.pk)
        second = await new_turn(
            owner,
            [(LOCAL, {"temperature": 0.3}), ("echo", {})],
            "And times three?",
            session=first.session,
            system_prompt="Be brief.",
        )
        await run_turn(second.pk)

    assert len(bodies) == 2
    assert bodies[0]["messages"] == [{"role": "user", "content": "What is two plus two?"}]
    assert bodies[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And times three?"},
    ]
    assert bodies[1]["temperature"] == 0.3
    assert bodies[1]["model"] == "smollm2"
    assert "Echo" not in json.dumps(bodies)
    local, echo = await rows(second)
    assert local.text == "Twelve."
    # Echo numbers its answer by the user turns it was sent: its own history came along.
    assert echo.text == "Echo #2: And times three?"


async def test_a_provider_error_fails_only_its_pane(owner: Any, aredis: Any) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(local_url()).respond(
            401, json={"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
        )
        turn = await new_turn(owner, [(LOCAL, {}), ("echo", {})], "Hello?")
        await run_turn(turn.pk)

    assert route.call_count == 1  # a refused key is not retried
    failed, echo = await rows(turn)
    assert failed.status == Status.ERROR
    assert failed.error.startswith("Local rejected the API key (401)")
    assert failed.error == "Local rejected the API key (401): Invalid API key"
    assert failed.finish_reason == "error"
    assert failed.text == ""
    assert (await log_of(aredis, failed.pk))[-1][1] == {"k": "e", "st": "error"}
    assert echo.status == Status.DONE
    assert echo.text == "Echo #1: Hello?"


async def test_a_stream_without_usage_is_estimated(owner: Any, aredis: Any) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(local_url()).mock(
            return_value=sse_response(sse_chunks(["Hello", " there,", " friend."]))
        )
        turn = await new_turn(owner, [(LOCAL, {})], "Greet me")
        await run_turn(turn.pk)

    [row] = await rows(turn)
    assert row.status == Status.DONE
    assert row.text == "Hello there, friend."
    assert row.usage_estimated is True
    assert row.output_tokens is not None and row.output_tokens > 0
    assert row.input_tokens is not None and row.input_tokens > 0


async def test_a_stream_with_usage_is_exact(owner: Any, aredis: Any) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(local_url()).mock(return_value=sse_response(sse_chunks(["Hi"], usage=True)))
        turn = await new_turn(owner, [(LOCAL, {})], "Greet me")
        await run_turn(turn.pk)

    [row] = await rows(turn)
    assert (row.usage_estimated, row.input_tokens, row.output_tokens) == (False, 7, 3)


async def test_a_busy_endpoint_makes_the_second_pane_wait_its_turn(owner: Any, aredis: Any) -> None:
    assert settings.PLAYGROUND_LOCAL_CONCURRENCY == 1
    requested: list[float] = []
    finished: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requested.append(time.monotonic())
        return sse_response(sse_chunks(["Slow", " and", " steady"]), pause=0.08, done=finished)

    with respx.mock(assert_all_called=True) as mock:
        mock.post(local_url()).mock(side_effect=answer)
        turn = await new_turn(owner, [(LOCAL, {}), (LOCAL, {})], "Take turns")
        await run_turn(turn.pk)

    assert len(requested) == 2
    assert requested[1] >= finished[0]  # the second request only after the first answer
    logs = {row.pk: await log_of(aredis, row.pk) for row in await rows(turn)}
    waiting = f"waiting for {LOCAL_NAME} — 1 ahead"
    waited = [pk for pk, entries in logs.items() if (entries[0][1] == {"k": "s", "msg": waiting})]
    assert len(waited) == 1
    # Once it has the slot the waiting line is gone from its status.
    assert response_log.merge(logs[waited[0]]).message in (None, "")  # type: ignore[arg-type]
    assert [f.get("msg") for _, f in logs[waited[0]]].count(waiting) == 1
    for row in await rows(turn):
        assert row.status == Status.DONE
        assert row.text == "Slow and steady"
        assert merged_text(logs[row.pk]) == row.text
    # Its wait is shown apart: its TTFT and tokens/s count from its own call, as the other's.
    [first] = [row for row in await rows(turn) if row.pk != waited[0]]
    [second] = [row for row in await rows(turn) if row.pk == waited[0]]
    assert first.waited_ms == 0 and all("w" not in fields for _, fields in logs[first.pk])
    wait_ms = (requested[1] - requested[0]) * 1000
    assert second.waited_ms >= wait_ms - 50
    assert second.ttft_ms is not None and second.ttft_ms < second.waited_ms
    assert response_log.merge(logs[second.pk]).waited_ms == second.waited_ms  # type: ignore[arg-type]
    streaming_s = (second.total_ms - second.waited_ms - second.ttft_ms) / 1000
    assert second.tokens_per_s == round(second.output_tokens / streaming_s, 1)
    # Nobody holds or waits for a slot afterwards.
    endpoint = settings.PLAYGROUND_LOCAL_MODEL_URL
    assert await aredis.zcard(f"pg:slots:{endpoint}") == 0
    assert await aredis.zcard(f"pg:queue:{endpoint}") == 0


async def test_the_claim_takes_each_panes_endpoint_slot_and_a_lost_claim_gives_it_back(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim tries for the slots in the round trip it makes anyway: the first pane of a
    one-at-a-time endpoint holds it before any request, the second keeps its place in the
    queue; a pane stopped before the claim's update gives back what it took."""
    from playground.worker import runner

    endpoint = settings.PLAYGROUND_LOCAL_MODEL_URL
    turn = await new_turn(owner, [(LOCAL, {}), (LOCAL, {}), (LOCAL, {})], "Take turns")
    first, second, stopped = await rows(turn)
    beat_and_try = runner.beat_and_try

    def stop_meanwhile(client: Any, beats: list[int], wanted: Any, person: int) -> dict[int, bool]:
        held = beat_and_try(client, beats, wanted, person)
        Response.objects.filter(pk=stopped.pk).update(status=Status.STOPPED)
        return held

    monkeypatch.setattr(runner, "beat_and_try", stop_meanwhile)
    jobs = await sync_to_async(claim_responses)(turn.pk, [first.pk, second.pk, stopped.pk])

    assert [(j.response_id, j.slot_held) for j in jobs] == [(first.pk, True), (second.pk, False)]
    assert await aredis.zrange(f"pg:slots:{endpoint}", 0, -1) == [str(first.pk).encode()]
    assert await aredis.zrange(f"pg:queue:{endpoint}", 0, -1) == [str(second.pk).encode()]
    await aredis.delete(f"pg:slots:{endpoint}", f"pg:queue:{endpoint}", f"pg:slotowners:{endpoint}")


async def test_the_claim_takes_a_slot_after_redis_forgot_its_scripts(
    owner: Any, aredis: Any
) -> None:
    """A restarted or flushed Redis has no scripts: the claim loads the slot script and
    tries again, in the same call."""
    endpoint = settings.PLAYGROUND_LOCAL_MODEL_URL
    await aredis.script_flush()
    turn = await new_turn(owner, [(LOCAL, {})], "After a Redis restart")

    [job] = await sync_to_async(claim_responses)(turn.pk)

    assert job.slot_held is True
    assert await aredis.zrange(f"pg:slots:{endpoint}", 0, -1) == [str(job.response_id).encode()]
    assert await aredis.exists(f"pg:hb:{job.response_id}") == 1
    await aredis.delete(f"pg:slots:{endpoint}", f"pg:queue:{endpoint}", f"pg:slotowners:{endpoint}")


async def test_a_pane_under_a_rate_limit_takes_no_slot_before_it_is_admitted(
    owner: Any, aredis: Any
) -> None:
    from playground.models import RateLimit

    await RateLimit.objects.acreate(provider="local", requests_per_minute=5)
    turn = await new_turn(owner, [(LOCAL, {})], "Wait for the limit first")

    [job] = await sync_to_async(claim_responses)(turn.pk)

    assert job.slot_held is False
    assert await aredis.zcard(f"pg:slots:{settings.PLAYGROUND_LOCAL_MODEL_URL}") == 0


async def test_a_page_load_right_after_the_claim_does_not_take_the_pane_for_dead(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between claiming a pane (status streaming) and its first heartbeat, a page load or an
    idle follower runs the watchdog; the pane must not look dead then."""
    from playground.live.watchdog import reap_dead_sync
    from playground.worker import runner

    histories = runner._histories
    reaped: list[int] = []

    def histories_then_watchdog(claimed: list[Any]) -> Any:
        # _histories runs right after the claim: look at the panes as a page would.
        reaped.extend(reap_dead_sync([r.pk for r in claimed]))
        return histories(claimed)

    monkeypatch.setattr(runner, "_histories", histories_then_watchdog)
    turn = await new_turn(owner, [("echo", {"delay_ms": 0}), ("echo", {"delay_ms": 0})])

    await run_turn(turn.pk)

    assert reaped == []
    for row in await rows(turn):
        assert (row.status, row.text) == (Status.DONE, "Echo #1: one two three four five six")
        entries = await log_of(aredis, row.pk)
        assert [f["k"] for _, f in entries][-1] == "e"
        assert [f.get("st") for _, f in entries if f["k"] == "e"] == ["done"]


async def test_a_rate_limit_set_in_admin_holds_the_second_call_and_says_so(
    owner: Any, aredis: Any
) -> None:
    """One request a minute for the provider: the second pane waits for the window, says
    how long, and can be stopped while it waits; the first pane is not held up."""
    from playground.models import RateLimit

    await RateLimit.objects.acreate(provider="echo", requests_per_minute=1)
    turn = await new_turn(owner, [("echo", {"delay_ms": 0}), ("echo", {"delay_ms": 0})])
    task = asyncio.create_task(run_turn(turn.pk))
    try:
        waiting: tuple[int, str] | None = None
        for _ in range(200):
            for row in await rows(turn):
                message = response_log.merge(await log_of(aredis, row.pk)).message  # type: ignore[arg-type]
                if message:
                    waiting = (row.pk, message)
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting is not None
        held, message = waiting
        assert message.startswith("waiting for the Echo limit of this key (1 request a minute) — ")
        assert 55 <= int(message.rsplit("— ", 1)[1].split()[0]) <= 60
        await aredis.set(response_log.stop_key(held), 1)
        await asyncio.wait_for(task, timeout=2.0)
    finally:
        if not task.done():
            task.cancel()
    by_pk = {row.pk: row for row in await rows(turn)}
    assert by_pk[held].status == Status.STOPPED
    assert by_pk[held].text == ""
    (ran,) = [row for pk, row in by_pk.items() if pk != held]
    assert (ran.status, ran.text) == (Status.DONE, "Echo #1: one two three four five six")


async def test_a_model_enabled_a_moment_ago_runs_although_the_worker_cached_the_catalog(
    owner: Any, aredis: Any
) -> None:
    """The worker's catalog is cached for a few seconds; an entry an admin enabled in the
    meantime (in another process, so no signal reached this one) still runs."""
    from playground.catalog import catalog
    from playground.models import CatalogEntry

    await CatalogEntry.objects.filter(key="echo").aupdate(enabled=False)
    await sync_to_async(catalog)()  # cached without echo
    turn = await new_turn(owner, [("echo", {"delay_ms": 0})])
    await CatalogEntry.objects.filter(key="echo").aupdate(enabled=True)  # no signal

    await run_turn(turn.pk)

    (row,) = await rows(turn)
    assert (row.status, row.error) == (Status.DONE, "")
    assert row.text == "Echo #1: one two three four five six"


async def test_a_response_whose_row_cannot_be_written_is_left_to_the_watchdog(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the final row: the worker stops beating for the response (it
    does not keep it alive for ever), so the watchdog ends it with the text its log holds."""
    from playground.live.watchdog import reap_dead_sync
    from playground.worker import runner

    def refused(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(runner, "end_response", refused)
    turn = await new_turn(owner, [("echo", {"delay_ms": 0})])

    with pytest.raises(RuntimeError, match="database is locked"):
        await run_turn(turn.pk)

    [row] = await rows(turn)
    assert row.status == Status.STREAMING
    await aredis.delete(f"pg:hb:{row.pk}")  # what 5 s without a beat does
    await asyncio.sleep(1.6)  # a publisher tick that would beat for it, if it still held it
    assert not await aredis.exists(f"pg:hb:{row.pk}")
    await aredis.set(f"pg:nohb:{row.pk}", 0)  # an earlier look found no heartbeat either
    assert await sync_to_async(reap_dead_sync)([row.pk]) == [row.pk]
    [row] = await rows(turn)
    assert (row.status, row.text) == (Status.INTERRUPTED, "Echo #1: one two three four five six")


async def test_an_answer_that_ends_while_redis_is_away_ends_done_once_it_is_back(
    owner: Any, aredis: Any
) -> None:
    """Its endpoint slot cannot be given back and its end entry waits: neither fails the
    answer. The slot is dropped by the next pane that asks (the heartbeat is gone)."""
    from playground.worker.event_loop import context

    outage = Outage(context().redis)
    turn = await new_turn(owner, [("echo", {"delay_ms": 60})])
    running = asyncio.create_task(run_turn(turn.pk))
    [row] = await rows(turn)
    for _ in range(500):  # its first entry is written
        if await aredis.exists(response_log.log_key(row.pk)):
            break
        await asyncio.sleep(0.01)
    outage.mode = "away"  # from the first entry on, past the answer's end (8 words, 0.42 s)
    await asyncio.sleep(0.8)
    assert not running.done()  # its end entry waits for Redis
    outage.mode = None
    await asyncio.wait_for(running, timeout=5)

    [row] = await rows(turn)
    assert (row.status, row.error) == (Status.DONE, "")
    assert row.text == "Echo #1: one two three four five six"
    entries = await log_of(aredis, row.pk)
    assert [response_log.seq_of(i) for i, _ in entries] == list(range(1, len(entries) + 1))
    assert merged_text(entries) == row.text
    assert entries[-1][1] == {"k": "e", "st": "done"}
