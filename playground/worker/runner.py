"""Runs one turn: every pane streams at once on the worker's event loop.

For each pane: claim the row (a conditional update, so a task delivered twice cannot run a
pane twice), take a slot at its endpoint, stream from the provider, hand deltas to the
publisher, then write the final row once. A pane never waits for another, and a failing
pane only fails itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from playground.attachments import image_parts, tool_specs
from playground.catalog import Limits, catalog, forget_catalog, provider_limits
from playground.egress import EgressRefused, public_only
from playground.live.pane_end import end_pane
from playground.models import Status, Turn
from playground.own_models import own_models_for_session, parse_model_key, recheck_base_url
from playground.redis_sync import redis_client
from playground.usage import estimate_tokens, tokens_per_second
from playground.worker.claim import (
    PendingRow,
    TurnText,
    earlier_answers,
    mark_streaming,
    pending_rows,
)
from playground.worker.event_loop import WorkerContext, context
from playground.worker.pane_run import PaneRun
from playground.worker.publisher import Publisher
from playground.worker.rate_limits import admit, credential_id, settle
from playground.worker.slots import beat_and_try, endpoint_slot, release_sync
from providers.base import (
    ChatRequest,
    Credentials,
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


def _histories(claimed: list[PendingRow]) -> dict[int, list[Message]]:
    """Each pane's own conversation before this turn, then this turn's prompt; one query
    for all panes of a follow-up, none for a first turn."""
    if not claimed:
        return {}
    first = claimed[0]
    earlier: dict[int, list[tuple[TurnText, str]]] = {r.pane_id: [] for r in claimed}
    if first.turn_index > 0:
        for pane_id, said, answer in earlier_answers(list(earlier), first.turn_index):
            earlier[pane_id].append((said, answer))
    system = first.system_prompt
    histories = {}
    for response in claimed:
        messages: list[Message] = [Message("system", system)] if system.strip() else []
        for said, answer in earlier[response.pane_id]:
            messages.append(_user_message(said))
            messages.append(Message("assistant", answer))
        messages.append(_user_message(response.turn))
        histories[response.pk] = messages
    return histories


def _user_message(turn: TurnText) -> Message:
    if not turn.images:
        return Message("user", turn.prompt)
    return Message("user", (*image_parts(turn.images), TextPart(turn.prompt)))


def _expected_tokens(request: ChatRequest) -> int:
    """What a call is counted as before it runs: its input and a likely answer."""
    answer = int(request.params.get("max_tokens") or 1024)
    return sum(estimate_tokens(m.text) for m in request.messages) + answer


def claim_panes(turn_id: int, response_ids: list[int] | None = None) -> list[PaneRun]:
    """Claim the turn's pending responses and build their requests (blocking: the Celery
    task's thread, or a thread of the loop's executor). ``response_ids``, when the task
    carries them, saves a query before the claim; only pending ones of the turn count."""
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
    own = own_models_for_session(rows[0].session_id, (r.model_key for r in rows))
    if own:
        models = {**models, **{k: o.model for k, o in own.items() if o.model is not None}}
    limits = provider_limits()
    # One round trip before the claim: each pane's heartbeat (a pane marked streaming
    # without one is taken for dead by the watchdog before run_pane beats), and a try for
    # its endpoint's slot. A pane under a rate limit asks for its slot later, once admitted,
    # so that it does not hold the endpoint while it waits.
    client = redis_client()
    wanted = []
    for r in rows:
        model = models.get(r.model_key)
        if model is not None and not limits.get(model.provider, Limits()):
            wanted.append((model.endpoint, model.concurrency, r.pk))
    held = beat_and_try(client, [r.pk for r in rows], wanted)
    # One conditional update claims them all; when it claims fewer than were read (a
    # task delivered twice, a Stop meanwhile), the claim's own timestamp tells which rows
    # this task got.
    ours = mark_streaming([r.pk for r in rows], timezone.now())
    if len(ours) != len(rows):
        for endpoint, _limit, pk in wanted:
            if pk not in ours:
                release_sync(client, endpoint, pk)
        rows = [r for r in rows if r.pk in ours]
    histories = _histories(rows)
    panes = []
    for response in rows:
        model = models.get(response.model_key)
        mine = own.get(response.model_key)
        if mine is not None:
            credentials = mine.credentials  # decrypted from the vault, in this worker only
        else:
            credentials = model.credentials() if model else Credentials()
        request = ChatRequest(
            model=model.model_id if model else response.model_key,
            messages=histories[response.pk],
            params=response.params,
            credentials=credentials,
            base_url=model.base_url if model else "",
            tools=tool_specs(response.tools),
        )
        pane_limits = limits.get(model.provider, Limits()) if model else Limits()
        panes.append(
            PaneRun(
                response.pk,
                model,
                request,
                response.display_name,
                limits=pane_limits,
                slot_held=held.get(response.pk, False),
                refusal=mine.refusal if mine else "",
                user_base_url=mine is not None,
            )
        )
    return panes


def _end(pane: PaneRun, seq: int) -> bool:
    """End the pane with what it produced (its row, then its log's end entry as entry
    ``seq``); False if someone else ended its row first."""
    text = "".join(pane.text)
    reasoning = "".join(pane.reasoning)
    usage = pane.usage or Usage()
    estimated = usage.output_tokens is None or usage.input_tokens is None
    output_tokens = usage.output_tokens
    if output_tokens is None:
        output_tokens = estimate_tokens(text) + estimate_tokens(reasoning)
    input_tokens = usage.input_tokens
    if input_tokens is None:
        input_tokens = sum(estimate_tokens(m.text) for m in pane.request.messages)
    total_ms = pane.elapsed_ms()
    tokens_per_s = tokens_per_second(output_tokens, pane.ttft_ms, total_ms, pane.waited_ms)
    return end_pane(
        redis_client(),
        pane.response_id,
        was=Status.STREAMING,
        status=pane.status,
        seq=seq,
        end_log_anyway=True,
        text=text,
        reasoning=reasoning,
        tool_calls=pane.tool_calls,
        finish_reason=pane.finish_reason,
        error=pane.error,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        usage_estimated=estimated,
        ttft_ms=pane.ttft_ms,
        waited_ms=pane.waited_ms,
        total_ms=total_ms,
        tokens_per_s=None if tokens_per_s is None else round(tokens_per_s, 1),
        cost=pane.model.cost(input_tokens, output_tokens) if pane.model else None,
        cost_currency=pane.model.currency if pane.model else "",
    )


async def stream_panes(panes: list[PaneRun]) -> None:
    if panes:
        ctx = context()
        await asyncio.gather(*(run_pane(ctx, pane) for pane in panes))


async def run_pane(ctx: WorkerContext, pane: PaneRun) -> None:
    publisher = ctx.publisher
    publisher.start_pane(pane)
    consume = asyncio.create_task(_consume(ctx, pane))
    stop = asyncio.create_task(pane.stop_event.wait())
    try:
        await asyncio.wait({consume, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not consume.done():
        consume.cancel()  # closes the provider connection (aclosing below)
        with contextlib.suppress(asyncio.CancelledError):
            await consume
        pane.status = Status.STOPPED
        pane.finish_reason = pane.finish_reason or "stopped"
    elif consume.exception() is not None:
        error = consume.exception()
        log.error("pane %s failed: %s", pane.response_id, type(error).__name__)
        pane.status, pane.error = Status.ERROR, "The playground failed while streaming."
    if pane.stop_requested and pane.status == Status.DONE and not pane.finish_reason:
        pane.status = Status.STOPPED
    seq = await publisher.flush_last(pane)
    await sync_to_async(_end, thread_sensitive=False)(pane, seq + 1)


async def _consume(ctx: WorkerContext, pane: PaneRun) -> None:
    publisher = ctx.publisher
    model = pane.model
    if pane.refusal or model is None:
        pane.status = Status.ERROR
        pane.error = pane.refusal or "This model is no longer in the catalog."
        return
    provider = model.provider_class()

    waited = False

    async def waiting(ahead: int) -> None:
        nonlocal waited
        waited = True
        publisher.set_status(pane, f"waiting for {model.display_name} — {ahead} ahead")

    async def retrying(attempt: int, delay: float, error: ProviderError) -> None:
        publisher.set_status(pane, f"{error.message} — retrying in {delay:.0f} s")

    async def limited(seconds: float) -> None:
        nonlocal waited
        waited = True
        publisher.set_status(
            pane,
            f"waiting for the {model.provider_class.display_name} limit of this key "
            f"({pane.limits.describe()}) — {seconds:.0f} s",
        )

    credential = credential_id(model.provider, pane.request.credentials, model.endpoint)
    # Counting the history's tokens costs ~40 µs per earlier answer, on the loop, before
    # the request: only a token limit needs it.
    expected = _expected_tokens(pane.request) if pane.limits.tokens_per_minute else 0
    call = await admit(ctx.redis, credential, pane.limits, expected, limited)
    async with endpoint_slot(
        ctx.redis, model.endpoint, model.concurrency, pane.response_id, waiting, held=pane.slot_held
    ):
        if waited:
            pane.waited_ms = pane.elapsed_ms()
            publisher.set_status(pane, "")  # clears the waiting line
        if pane.user_base_url:
            try:
                await recheck_base_url(pane.request.base_url)
            except EgressRefused as refused:
                pane.status, pane.error, pane.finish_reason = Status.ERROR, str(refused), "error"
                return
        with ctx.http.lease() as client, _egress(pane):
            events = provider.stream(client, pane.request, on_retry=retrying)
            async with contextlib.aclosing(events):
                async for event in events:
                    _apply(pane, event, publisher)
    if pane.limits.tokens_per_minute and pane.usage is not None:
        used = (pane.usage.input_tokens or 0) + (pane.usage.output_tokens or 0)
        await settle(
            ctx.redis, credential, call, min(expected, pane.limits.tokens_per_minute), used
        )


def _egress(pane: PaneRun) -> contextlib.AbstractContextManager[None]:
    """A person's base URL: every connection of the call to a checked public address."""
    if not pane.user_base_url:
        return contextlib.nullcontext()
    return public_only(settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS)


def _apply(pane: PaneRun, event: Event, publisher: Publisher) -> None:
    if isinstance(event, TextDelta):
        publisher.add(pane, text=event.text)
    elif isinstance(event, ReasoningDelta):
        publisher.add(pane, reasoning=event.text)
    elif isinstance(event, ToolCall):
        pane.tool_calls.append({"id": event.id, "name": event.name, "arguments": event.arguments})
    elif isinstance(event, Usage):
        pane.usage = event
    elif isinstance(event, Finish):
        pane.finish_reason = event.reason
    elif isinstance(event, Failure):
        pane.status, pane.error = Status.ERROR, event.message
        pane.finish_reason = "error"
