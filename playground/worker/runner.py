"""Runs one turn: every pane streams at once on the worker's event loop.

For each pane's response: claim the row (a conditional update, so a task delivered twice
cannot run it twice), take a slot at its endpoint, stream from the provider, hand deltas
to the publisher, then end it once (its row, then its log's end entry). A response never
waits for another, and a failing one only fails itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils import timezone

from playground.attachments import image_parts, tool_specs
from playground.catalog import Limits, catalog, forget_catalog, provider_limits
from playground.egress import EgressRefused, public_only, recheck
from playground.live import response_log
from playground.live.response_end import CloseLog, end_response
from playground.media import media_parts, media_refusal
from playground.models import ContextPolicy, Scope, Status, Turn
from playground.own_models import own_models_for_owner, parse_model_key
from playground.redis_sync import redis_client
from playground.usage import estimate_tokens, tokens_per_second
from playground.worker import keys
from playground.worker.claim import (
    EarlierTurn,
    PendingRow,
    TurnText,
    earlier_turns,
    mark_streaming,
    pending_rows,
)
from playground.worker.event_loop import WorkerContext, context
from playground.worker.publisher import Publisher
from playground.worker.rate_limits import admit, credential_id, settle
from playground.worker.response_run import ResponseRun
from playground.worker.shutdown import SHUTDOWN_MESSAGE, begin_hand_back, hand_back
from playground.worker.slots import beat_and_try, endpoint_slot, release_sync
from providers.base import (
    ChatRequest,
    Credentials,
    ErrorKind,
    Event,
    Failure,
    Finish,
    Message,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCall,
    Usage,
)

log = logging.getLogger(__name__)

#: The usage of a pane whose provider was never asked (refused at the claim or just before
#: the call, or stopped while it waited): nothing, not an estimate of its prompt.
NOTHING_ASKED = Usage(input_tokens=0, output_tokens=0)

DATABASE_AWAY = (
    "The database does not answer; this answer is kept here and saved as soon as it does."
)


def _histories(claimed: list[PendingRow]) -> dict[int, list[Message]]:
    """Each pane's conversation before this turn, as the session's context policy has it,
    then this turn's prompt; one query for all panes of a follow-up, none for a first turn.

    - "own": each model sees its own answers; where the person chose an answer to continue
      from, every model sees that one for its turn instead.
    - "chosen": only the chosen answers; a turn with none is left out.
    - "all": every answer of the panes showing, each under its model's name, except those
      the person excluded (a model's own answer alone goes in as it is).
    """
    if not claimed:
        return {}
    first = claimed[0]
    policy = first.context_policy
    earlier = (
        earlier_turns(first.session_id, [r.pane_id for r in claimed], first.turn_index, policy)
        if first.turn_index > 0
        else []
    )
    system = first.system_prompt
    histories = {}
    for response in claimed:
        messages: list[Message] = [Message("system", system)] if system.strip() else []
        for turn in earlier:
            answer = _answer_for(response.pane_id, turn, policy)
            if answer is not None:
                messages.append(_user_message(turn.said))
                messages.append(Message("assistant", answer))
        messages.append(_user_message(response.turn))
        histories[response.pk] = messages
    return histories


def _answer_for(pane_id: int, turn: EarlierTurn, policy: str) -> str | None:
    """What a pane is told was answered to an earlier turn (None: the turn is left out)."""
    if policy == ContextPolicy.ALL:
        if len(turn.answers) == 1:
            return turn.answers[0][2]
        return "\n\n".join(f"[{name}]\n{text}" for _pane, name, text in turn.answers) or None
    if turn.chosen is not None:
        return turn.chosen
    if policy == ContextPolicy.CHOSEN:
        return None
    return next((text for pane, _name, text in turn.answers if pane == pane_id), None)


def _user_message(turn: TurnText) -> Message:
    if not turn.images and not turn.media:
        return Message("user", turn.prompt)
    return Message(
        "user", (*image_parts(turn.images), *media_parts(turn.media), TextPart(turn.prompt))
    )


def _expected_tokens(request: ChatRequest) -> int:
    """What a call is counted as before it runs: its input and a likely answer."""
    answer = int(request.params.get("max_tokens") or 1024)
    return sum(estimate_tokens(m.text) for m in request.messages) + answer


def claim_responses(
    turn_id: int, response_ids: list[int] | None = None, requeue: bool = True
) -> list[ResponseRun]:
    """Claim the turn's pending responses and build their requests (blocking: the Celery
    task's thread, or a thread of the loop's executor). ``response_ids``, when the task
    carries them, saves a query before the claim; only pending ones of the turn count.
    ``requeue``: whether a pane not yet asked when the worker stops goes back to the queue
    as a task of its own (a rematch's turns, asked in order by one task, do not)."""
    rows = pending_rows(turn_id, response_ids)
    if not rows:
        if not Turn.objects.filter(pk=turn_id).exists():
            log.warning("turn %s no longer exists; nothing to run", turn_id)
        return []  # already run (a redelivered task) or stopped before it started
    models = catalog()
    if any(r.model_key not in models and not parse_model_key(r.model_key) for r in rows):
        # This process's copy may predate an entry an admin enabled a moment ago.
        forget_catalog()
        models = catalog()
    # People's own endpoints: one query, only for a turn that has such panes, and only the
    # endpoints of the owner of the turn's session.
    own = own_models_for_owner(rows[0].owner_id, (r.model_key for r in rows))
    if own:
        models = {**models, **{k: o.model for k, o in own.items() if o.model is not None}}
    limits = provider_limits()
    # One round trip before the claim: each pane's heartbeat (a pane marked streaming
    # without one is taken for dead by the watchdog before run_response beats), and a try for
    # its endpoint's slot. A pane under a rate limit asks for its slot later, once admitted,
    # so that it does not hold the endpoint while it waits.
    client = redis_client()
    wanted = []
    for r in rows:
        model = models.get(r.model_key)
        if model is not None and not limits.get(model.provider, Limits()):
            wanted.append((model.endpoint, model.concurrency, r.pk))
    held = beat_and_try(client, [r.pk for r in rows], wanted, rows[0].owner_id)
    # One conditional update claims them all; when it claims fewer than were read (a
    # task delivered twice, a Stop meanwhile), the claim's own timestamp tells which rows
    # this task got.
    ours = mark_streaming([r.pk for r in rows], timezone.now())
    if len(ours) != len(rows):
        for endpoint, _limit, pk in wanted:
            if pk not in ours:
                release_sync(client, endpoint, pk)
        rows = [r for r in rows if r.pk in ours]
    # A pane handed back by a worker that stopped goes on in its log after its last entry.
    resumed = [r.pk for r in rows if r.resumed]
    seqs: dict[int, int] = {}
    if resumed:
        with client.pipeline(transaction=False) as pipe:
            for pk in resumed:
                pipe.xrevrange(response_log.log_key(pk), count=1)
            replies = pipe.execute()
        seqs = {pk: response_log.last_seq(last) for pk, last in zip(resumed, replies, strict=True)}
    histories = _histories(rows)
    saved = keys.load(r.credential_id for r in rows if r.credential_id is not None)
    runs = []
    for response in rows:
        model = models.get(response.model_key)
        mine = own.get(response.model_key)
        refusal = mine.refusal if mine else ""
        if mine is not None:
            credentials = mine.credentials  # decrypted from the vault, in this worker only
        elif model is not None and response.credential_id is not None:
            opened = keys.open_for(saved.get(response.credential_id), model)
            credentials, refusal = opened.credentials, opened.refusal
        elif model is not None and response.key_scope in ("", Scope.ENV):
            credentials, refusal = model.credentials(), model.site_key_refusal
        else:  # a saved key that was deleted since Send
            credentials, refusal = Credentials(), "The key this pane was sent with was deleted."
        request = ChatRequest(
            model=model.model_id if model else response.model_key,
            messages=histories[response.pk],
            params=response.params,
            credentials=credentials,
            base_url=model.base_url if model else "",
            tools=tool_specs(response.tools),
            limits=settings.PLAYGROUND_READ_LIMITS,
        )
        if model is not None and (request.videos or request.audios):
            # Said before the call: a model that cannot take a video or a recording the
            # conversation carries (this turn's or an earlier one's).
            refusal = media_refusal(model, request) or refusal
        pane_limits = limits.get(model.provider, Limits()) if model else Limits()
        runs.append(
            ResponseRun(
                response.pk,
                model,
                request,
                response.display_name,
                limits=pane_limits,
                slot_held=held.get(response.pk, False),
                refusal=refusal,
                egress_hosts=model.private_hosts if model else None,
                person=response.owner_id,
                turn_id=turn_id,
                requeue=requeue,
                seq=seqs.get(response.pk, 0),
            )
        )
    return runs


def _end(run: ResponseRun, close_log: CloseLog) -> bool:
    """End the response with what it produced: its row, then ``close_log`` closes its log;
    False if someone else ended its row first."""
    text = "".join(run.text)
    reasoning = "".join(run.reasoning)
    usage = run.usage or Usage()
    estimated = usage.output_tokens is None or usage.input_tokens is None
    output_tokens = usage.output_tokens
    if output_tokens is None:
        output_tokens = estimate_tokens(text) + estimate_tokens(reasoning)
    input_tokens = usage.input_tokens
    if input_tokens is None:
        input_tokens = sum(estimate_tokens(m.text) for m in run.request.messages)
    total_ms = run.elapsed_ms()
    tokens_per_s = tokens_per_second(output_tokens, run.ttft_ms, total_ms, run.waited_ms)
    return end_response(
        run.response_id,
        was=Status.STREAMING,
        status=run.status,
        close_log=close_log,
        text=text,
        reasoning=reasoning,
        tool_calls=run.tool_calls,
        finish_reason=run.finish_reason,
        error=run.error,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        usage_estimated=estimated,
        ttft_ms=run.ttft_ms,
        waited_ms=run.waited_ms,
        total_ms=total_ms,
        tokens_per_s=None if tokens_per_s is None else round(tokens_per_s, 1),
        cost=run.model.cost(
            input_tokens, output_tokens, usage.audio_input_tokens, usage.video_input_tokens
        )
        if run.model
        else None,
        cost_currency=run.model.currency if run.model else "",
    )


async def stream_responses(runs: list[ResponseRun]) -> None:
    if runs:
        ctx = context()
        await asyncio.gather(*(run_response(ctx, run) for run in runs))


async def run_response(ctx: WorkerContext, run: ResponseRun) -> None:
    try:
        await _run_response(ctx, run)
    finally:
        run.finished.set()
        run.changed()  # its turn's thread may go


async def _run_response(ctx: WorkerContext, run: ResponseRun) -> None:
    publisher = ctx.publisher
    publisher.begin(run)
    consume = asyncio.create_task(_consume(ctx, run))
    stop = asyncio.create_task(run.stop_event.wait())
    try:
        passed = await _watch(run, consume, stop)
    finally:
        stop.cancel()
    cut_short = not consume.done()
    if cut_short:
        consume.cancel()  # closes the provider connection (aclosing below)
        with contextlib.suppress(asyncio.CancelledError):
            await consume
    if run.handing_back and run.calling_at is None and not run.stop_requested:
        # The worker is stopping and this pane has asked nothing yet: another worker
        # answers it from the start (worker/shutdown.py).
        await hand_back(run, publisher)
        return
    if cut_short:
        run.status = Status.STOPPED
        run.finish_reason = run.finish_reason or "stopped"
        if passed == "time_limit":
            run.finish_reason = "time_limit"
            run.error = (
                f"Stopped after {settings.PLAYGROUND_PANE_MAX_SECONDS} s, the longest one "
                "answer may run here; what had arrived is kept."
            )
        elif passed == "wait_limit":
            run.status, run.finish_reason = Status.ERROR, "wait_limit"
            run.error = (
                f"Stopped after waiting {settings.PLAYGROUND_PANE_WAIT_SECONDS} s for "
                f"{run.display_name}, the longest a pane may wait here; nothing was asked "
                "of it, and nothing is counted."
            )
            run.usage = NOTHING_ASKED
        elif run.shutting_down and not run.stop_requested:
            run.status, run.finish_reason = Status.INTERRUPTED, "interrupted"
            run.error = SHUTDOWN_MESSAGE
    elif consume.exception() is not None:
        error = consume.exception()
        log.error("pane %s failed: %s", run.response_id, type(error).__name__)
        run.status, run.error = Status.ERROR, "The playground failed while streaming."
    if run.stop_requested and run.status == Status.DONE and not run.finish_reason:
        run.status = Status.STOPPED
    # The row is written in a thread; then the publisher writes the last text and the end
    # entry in its next pipeline, with every other run's news.
    try:
        await _save_end(run, publisher)
    except BaseException:
        publisher.drop(run)
        raise
    await run.ended.wait()


async def _watch(run: ResponseRun, consume: asyncio.Task[None], stop: asyncio.Task[bool]) -> str:
    """Wait until the answer ends or is stopped (""), or a bound of fair use passes:
    "wait_limit" (PLAYGROUND_PANE_WAIT_SECONDS from its start, before its call began) or
    "time_limit" (PLAYGROUND_PANE_MAX_SECONDS from its call). No answer holds its slot,
    its key and the worker longer than that, and no wait for them, however long the queue
    at the endpoint, takes from the answer's own time."""
    longest = settings.PLAYGROUND_PANE_MAX_SECONDS or None
    patience = settings.PLAYGROUND_PANE_WAIT_SECONDS or None
    while True:
        now = time.monotonic()
        if run.calling_at is None:
            passed = "wait_limit"
            left = None if patience is None else run.started + patience - now
            # Its call may begin at any moment: look again within the longest answer.
            timeout = min((t for t in (left, longest) if t is not None), default=None)
        else:
            passed = "time_limit"
            left = timeout = None if longest is None else run.calling_at + longest - now
        if left is not None and left <= 0:
            return passed
        done, _ = await asyncio.wait(
            {consume, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if done:
            return ""


async def _save_end(run: ResponseRun, publisher: Publisher) -> None:
    """Write the run's end (``_end``). While the database does not answer (restarting, its
    port blocked, SQLite locked), try again for up to PLAYGROUND_DB_RETRY_SECONDS, the pane
    saying so meanwhile; the publisher keeps its heartbeat, so the watchdog leaves it be.
    Past that, the error is raised (the caller lets go of the run, and the watchdog ends
    it from its log and checkpoint once the database is back)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.PLAYGROUND_DB_RETRY_SECONDS
    pause = 0.25
    while True:
        try:
            await sync_to_async(_end_or_reset, thread_sensitive=False)(
                run, publisher.close_soon(run)
            )
            return
        except (OperationalError, InterfaceError) as error:
            if loop.time() + pause > deadline:
                raise
            log.warning("pane %s: saving its end failed (%s); trying again", run.response_id, error)
            publisher.set_status(run, DATABASE_AWAY)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)


def _end_or_reset(run: ResponseRun, close_log: CloseLog) -> bool:
    try:
        return _end(run, close_log)
    except (OperationalError, InterfaceError):
        # This thread's connection may be broken for good: the next try opens a new one.
        close_old_connections()
        raise


async def _consume(ctx: WorkerContext, run: ResponseRun) -> None:
    publisher = ctx.publisher
    model = run.model
    if run.refusal or model is None:
        run.status = Status.ERROR
        run.error = run.refusal or "This model is no longer in the catalog."
        run.usage = NOTHING_ASKED
        return
    provider = model.provider_class()

    waited = False

    async def waiting(ahead: int) -> None:
        nonlocal waited
        waited = True
        if ctx.stopping and run.requeue:
            # A worker told to stop starts no wait: the pane goes back to the queue, its
            # turn's thread held until it is queued again (Celery waits for the thread).
            begin_hand_back(run)
            return
        run.set_waiting(True)
        publisher.set_status(run, f"waiting for {model.display_name} — {ahead} ahead")

    async def retrying(attempt: int, delay: float, error: ProviderError) -> None:
        publisher.set_status(run, f"{error.message} — retrying in {delay:.0f} s")

    async def limited(seconds: float) -> None:
        nonlocal waited
        waited = True
        if ctx.stopping and run.requeue:
            begin_hand_back(run)
            return
        run.set_waiting(True)
        publisher.set_status(
            run,
            f"waiting for the {model.provider_class.display_name} limit of this key "
            f"({run.limits.describe()}) — {seconds:.0f} s",
        )

    credential = credential_id(model.provider, run.request.credentials, model.endpoint)
    # Counting the history's tokens costs ~40 µs per earlier answer, on the loop, before
    # the request: only a token limit needs it.
    expected = _expected_tokens(run.request) if run.limits.tokens_per_minute else 0
    call = await admit(ctx.redis, credential, run.limits, expected, limited)
    async with endpoint_slot(
        ctx.redis,
        model.endpoint,
        model.concurrency,
        run.response_id,
        waiting,
        held=run.slot_held,
        person=run.person,
    ):
        if run.handing_back:
            return  # the worker is stopping: the pane goes back to the queue uncalled
        run.calling_at = time.monotonic()
        if waited:
            run.set_waiting(False)  # streams from now on: its turn holds a thread again
            run.waited_ms = run.elapsed_ms()
            publisher.set_status(run, "")  # clears the waiting line
        if run.egress_hosts is not None:
            try:
                await recheck(run.request.base_url, run.egress_hosts)
            except EgressRefused as refused:
                run.status, run.error, run.finish_reason = Status.ERROR, str(refused), "error"
                run.usage = NOTHING_ASKED
                return
        with ctx.http.lease() as client, _egress(run):
            events = provider.stream(client, run.request, on_retry=retrying)
            async with contextlib.aclosing(events):
                async for event in events:
                    _apply(run, event, publisher)
    if run.limits.tokens_per_minute and run.usage is not None:
        used = (run.usage.input_tokens or 0) + (run.usage.output_tokens or 0)
        estimated = min(expected, run.limits.tokens_per_minute)
        # Redis away as the answer ends: the window keeps the estimate, an upper bound.
        with contextlib.suppress(redis.RedisError, OSError):
            await settle(ctx.redis, credential, call, estimated, used)


def _egress(run: ResponseRun) -> contextlib.AbstractContextManager[None]:
    """A typed base URL: every connection of the call to a checked public address."""
    if run.egress_hosts is None:
        return contextlib.nullcontext()
    return public_only(run.egress_hosts)


def _apply(run: ResponseRun, event: Event, publisher: Publisher) -> None:
    if isinstance(event, TextDelta):
        publisher.add(run, text=event.text)
    elif isinstance(event, ReasoningDelta):
        publisher.add(run, reasoning=event.text)
    elif isinstance(event, ToolCall):
        run.tool_calls.append({"id": event.id, "name": event.name, "arguments": event.arguments})
    elif isinstance(event, Usage):
        run.usage = event
    elif isinstance(event, Finish):
        run.finish_reason = event.reason
    elif isinstance(event, Failure) and event.kind is ErrorKind.LIMIT:
        # The answer reached the most one answer may hold here: stopped, its text kept.
        run.status, run.error = Status.STOPPED, event.message
        run.finish_reason = "length_limit"
    elif isinstance(event, Failure):
        run.status, run.error = Status.ERROR, event.message
        run.finish_reason = "error"
