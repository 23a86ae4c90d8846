""" "Test connection": the cheapest call a model allows (one token of answer to "Hi"), run
inside the worker where the key lives, reported as one sentence."""

from __future__ import annotations

import time
import uuid

from asgiref.sync import sync_to_async

from playground.catalog import CatalogModel, catalog
from playground.redis_sync import redis_client
from providers.base import ChatRequest, Failure, Message, ParamError, TextDelta

REPLY_TTL_S = 120


async def check(model: CatalogModel, client: object) -> str:
    """Call ``model`` once with the smallest answer it allows; say how it went."""
    from playground.runner import _credentials  # the one place keys are read

    try:
        params = model.clean_params({"max_tokens": 1} if _takes_max_tokens(model) else {})
    except ParamError:
        params = {}
    request = ChatRequest(
        model=model.model_id,
        messages=[Message("user", "Hi")],
        params=params,
        credentials=_credentials(model),
        base_url=model.base_url,
    )
    started = time.monotonic()
    answered = False
    async for event in model.provider_class().stream(client, request):  # type: ignore[arg-type]
        if isinstance(event, TextDelta):
            answered = True
        if isinstance(event, Failure):
            return f"{model.display_name}: failed — {event.message}."
    seconds = time.monotonic() - started
    what = "answered" if answered else "accepted the request"
    return f"{model.display_name}: connected; the model {what} in {seconds:.1f} s."


def _takes_max_tokens(model: CatalogModel) -> bool:
    return any(p.name == "max_tokens" for p in model.params)


async def run_check(model_key: str, reply_to: str) -> None:
    from playground.worker_loop import context

    ctx = context()
    models = await sync_to_async(catalog, thread_sensitive=False)()
    model = models.get(model_key)
    sentence = (
        await check(model, ctx.http) if model else f"{model_key}: not in the catalog (disabled?)."
    )
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_to, sentence)
        pipe.expire(reply_to, REPLY_TTL_S)
        await pipe.execute()


def ask_worker(model_key: str, timeout: float = 30.0) -> str:
    """Have a worker test ``model_key`` and wait for its sentence (the key never leaves the
    worker; the task message carries the model's key name only)."""
    from playground.tasks import check_connection

    reply_to = f"pg:conn:{uuid.uuid4().hex}"
    check_connection.delay(model_key, reply_to)
    answer = redis_client().blpop([reply_to], timeout=timeout)
    if answer is None:
        return f"{model_key}: no worker answered within {timeout:.0f} s — is a worker running?"
    return answer[1].decode() if isinstance(answer[1], bytes) else str(answer[1])
