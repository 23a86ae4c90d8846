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
import os
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from playground.attachments import image_parts, tool_specs
from playground.catalog import CatalogModel, catalog, forget_catalog
from playground.claim import PendingRow, TurnText, earlier_answers, mark_streaming, pending_rows
from playground.egress import EgressRefused, public_only
from playground.endpoints import own_models_for_session, parse_model_key, recheck_base_url
from playground.models import Response, Status, Turn
from playground.publisher import PaneBuffer
from playground.ratelimit import Limits, admit, credential_id, provider_limits, settle
from playground.redis_sync import redis_client
from playground.slots import beat_and_try, endpoint_slot, release_sync
from playground.usage import estimate_tokens, tokens_per_second
from playground.worker_loop import WorkerContext, context
from providers.base import (
    ChatRequest,
    Credentials,
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


@dataclass
class PaneJob:
    response_id: int
    model: CatalogModel | None
    request: ChatRequest
    display_name: str
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str = ""
    error: str = ""
    status: str = Status.DONE
    ttft_ms: int | None = None
    waited_ms: int = 0
    limits: Limits = field(default_factory=Limits)
    started: float = 0.0
    slot_held: bool = False  # load_jobs took the endpoint's slot already
    refusal: str = ""  # why the claim found this pane must not run (its error sentence)
    user_base_url: bool = False  # a person supplied the base URL: check egress before calling


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


def _credentials(model: CatalogModel) -> Credentials:
    # Until the vault lands, keys come from the worker's environment, read at call time.
    cls = model.provider_class
    return Credentials(
        api_key=os.environ.get(cls.key_env, "") if cls.key_env else "",
        extra={part: os.environ.get(env, "") for part, env in cls.extra_credentials.items()},
    )


def _expected_tokens(request: ChatRequest) -> int:
    """What a call is counted as before it runs: its input and a likely answer."""
    answer = int(request.params.get("max_tokens") or 1024)
    return sum(estimate_tokens(m.text) for m in request.messages) + answer


def load_jobs(turn_id: int, response_ids: list[int] | None = None) -> list[PaneJob]:
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
    jobs = []
    for response in rows:
        model = models.get(response.model_key)
        mine = own.get(response.model_key)
        if mine is not None:
            credentials = mine.credentials  # decrypted from the vault, in this worker only
        else:
            credentials = _credentials(model) if model else Credentials()
        request = ChatRequest(
            model=model.model_id if model else response.model_key,
            messages=histories[response.pk],
            params=response.params,
            credentials=credentials,
            base_url=model.base_url if model else "",
            tools=tool_specs(response.tools),
        )
        job_limits = limits.get(model.provider, Limits()) if model else Limits()
        jobs.append(
            PaneJob(
                response.pk,
                model,
                request,
                response.display_name,
                limits=job_limits,
                slot_held=held.get(response.pk, False),
                refusal=mine.refusal if mine else "",
                user_base_url=mine is not None,
            )
        )
    return jobs


def _save(job: PaneJob) -> bool:
    """Write the pane's final row once; False if someone else already ended it."""
    text = "".join(job.text)
    usage = job.usage or Usage()
    estimated = usage.output_tokens is None or usage.input_tokens is None
    output_tokens = usage.output_tokens
    if output_tokens is None:
        output_tokens = estimate_tokens(text) + estimate_tokens("".join(job.reasoning))
    input_tokens = usage.input_tokens
    if input_tokens is None:
        input_tokens = sum(estimate_tokens(m.text) for m in job.request.messages)
    total_ms = int((time.monotonic() - job.started) * 1000)
    tokens_per_s = tokens_per_second(output_tokens, job.ttft_ms, total_ms, job.waited_ms)
    updated = Response.objects.filter(pk=job.response_id, status=Status.STREAMING).update(
        status=job.status,
        text=text,
        reasoning="".join(job.reasoning),
        tool_calls=job.tool_calls,
        finish_reason=job.finish_reason,
        error=job.error,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        usage_estimated=estimated,
        ttft_ms=job.ttft_ms,
        waited_ms=job.waited_ms,
        total_ms=total_ms,
        tokens_per_s=None if tokens_per_s is None else round(tokens_per_s, 1),
        cost=job.model.cost(input_tokens, output_tokens) if job.model else None,
        cost_currency=job.model.currency if job.model else "",
        finished_at=timezone.now(),
    )
    return bool(updated)


async def run_turn(turn_id: int) -> None:
    """Claim and stream a turn from async code (tests); the Celery task claims in its own
    thread and calls :func:`run_jobs`."""
    await run_jobs(await sync_to_async(load_jobs, thread_sensitive=False)(turn_id))


async def run_jobs(jobs: list[PaneJob]) -> None:
    if jobs:
        ctx = context()
        await asyncio.gather(*(run_pane(ctx, job) for job in jobs))


async def run_pane(ctx: WorkerContext, job: PaneJob) -> None:
    publisher = ctx.publisher
    buffer = publisher.register(job.response_id)
    job.started = buffer.started
    try:
        consume = asyncio.create_task(_consume(ctx, job, buffer))
        assert buffer.stop_event is not None
        stop = asyncio.create_task(buffer.stop_event.wait())
        try:
            await asyncio.wait({consume, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not consume.done():
            consume.cancel()  # closes the provider connection (aclosing below)
            with contextlib.suppress(asyncio.CancelledError):
                await consume
            job.status = Status.STOPPED
            job.finish_reason = job.finish_reason or "stopped"
        elif consume.exception() is not None:
            error = consume.exception()
            log.error("pane %s failed: %s", job.response_id, type(error).__name__)
            job.status, job.error = Status.ERROR, "The playground failed while streaming."
        if buffer.stop_requested and job.status == Status.DONE and not job.finish_reason:
            job.status = Status.STOPPED
        job.ttft_ms, job.waited_ms = buffer.ttft_ms, buffer.waited_ms
        saved = await sync_to_async(_save, thread_sensitive=False)(job)
        await publisher.write_end(buffer, job.status if saved else "")
    finally:
        publisher.unregister(buffer)


async def _consume(ctx: WorkerContext, job: PaneJob, buffer: PaneBuffer) -> None:
    publisher = ctx.publisher
    model = job.model
    if job.refusal or model is None:
        job.status = Status.ERROR
        job.error = job.refusal or "This model is no longer in the catalog."
        return
    provider = model.provider_class()

    waited = False

    async def waiting(ahead: int) -> None:
        nonlocal waited
        waited = True
        publisher.set_status(buffer, f"waiting for {model.display_name} — {ahead} ahead")

    async def retrying(attempt: int, delay: float, error: ProviderError) -> None:
        publisher.set_status(buffer, f"{error.message} — retrying in {delay:.0f} s")

    async def limited(seconds: float) -> None:
        nonlocal waited
        waited = True
        publisher.set_status(
            buffer,
            f"waiting for the {model.provider_class.display_name} limit of this key "
            f"({job.limits.describe()}) — {seconds:.0f} s",
        )

    credential = credential_id(model.provider, job.request.credentials, model.endpoint)
    # Counting the history's tokens costs ~40 µs per earlier answer, on the loop, before
    # the request: only a token limit needs it.
    expected = _expected_tokens(job.request) if job.limits.tokens_per_minute else 0
    call = await admit(ctx.redis, credential, job.limits, expected, limited)
    async with endpoint_slot(
        ctx.redis, model.endpoint, model.concurrency, job.response_id, waiting, held=job.slot_held
    ):
        if waited:
            buffer.waited_ms = buffer.elapsed_ms()
            publisher.set_status(buffer, "")  # clears the waiting line
        if job.user_base_url:
            try:
                await recheck_base_url(job.request.base_url)
            except EgressRefused as refused:
                job.status, job.error, job.finish_reason = Status.ERROR, str(refused), "error"
                return
        with ctx.http.lease() as client, _egress(job):
            events = provider.stream(client, job.request, on_retry=retrying)
            async with contextlib.aclosing(events):
                async for event in events:
                    _apply(job, buffer, event, publisher)
    if job.limits.tokens_per_minute and job.usage is not None:
        used = (job.usage.input_tokens or 0) + (job.usage.output_tokens or 0)
        await settle(ctx.redis, credential, call, min(expected, job.limits.tokens_per_minute), used)


def _egress(job: PaneJob) -> contextlib.AbstractContextManager[None]:
    """A person's base URL: every connection of the call to a checked public address."""
    if not job.user_base_url:
        return contextlib.nullcontext()
    return public_only(settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS)


def _apply(job: PaneJob, buffer: PaneBuffer, event: Any, publisher: Any) -> None:
    if isinstance(event, TextDelta):
        job.text.append(event.text)
        publisher.add_text(buffer, event.text)
    elif isinstance(event, ReasoningDelta):
        job.reasoning.append(event.text)
        publisher.add_text(buffer, "", event.text)
    elif isinstance(event, ToolCall):
        job.tool_calls.append({"id": event.id, "name": event.name, "arguments": event.arguments})
    elif isinstance(event, Usage):
        job.usage = event
    elif isinstance(event, Finish):
        job.finish_reason = event.reason
    elif isinstance(event, Failure):
        job.status, job.error = Status.ERROR, event.message
        job.finish_reason = "error"
