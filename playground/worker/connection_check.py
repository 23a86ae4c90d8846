""" "Test connection": the cheapest call a model allows (one token of answer to "Hi"), run
inside the worker where the key lives, reported as one sentence."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings

from playground.catalog import CatalogModel, catalog
from playground.credentials import model_base_url
from playground.egress import EgressRefused, public_only
from playground.own_models import DELETED, own_models_for_owner, parse_model_key, recheck_base_url
from playground.worker.event_loop import context
from providers.base import ChatRequest, Credentials, Failure, Message, ParamError, TextDelta

REPLY_TTL_S = 120


async def check(model: CatalogModel, client: object, credentials: Credentials | None = None) -> str:
    """Call ``model`` once with the smallest answer it allows; say how it went.
    ``credentials``: a person's own endpoint's, from the vault; else the catalog's."""
    try:
        params = model.clean_params({"max_tokens": 1} if _takes_max_tokens(model) else {})
    except ParamError:
        params = {}
    request = ChatRequest(
        model=model.model_id,
        messages=[Message("user", "Hi")],
        params=params,
        credentials=credentials if credentials is not None else model.credentials(),
        base_url=model.base_url,
        limits=settings.PLAYGROUND_READ_LIMITS,
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


async def run_check(model_key: str, reply_to: str, owner_id: int | None = None) -> None:
    """Test ``model_key`` (a model of user ``owner_id``'s own endpoint when it is a
    ``mine:`` key) and push the sentence to ``reply_to``."""
    ctx = context()
    with ctx.http.lease() as client:
        if parse_model_key(model_key) is not None:
            sentence = await _check_own(model_key, owner_id, client)
        else:
            models = await sync_to_async(catalog, thread_sensitive=False)()
            model = models.get(model_key)
            sentence = (
                await check(model, client)
                if model
                else f"{model_key}: not in the catalog (disabled?)."
            )
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_to, sentence)
        pipe.expire(reply_to, REPLY_TTL_S)
        await pipe.execute()


async def _check_own(model_key: str, owner_id: int | None, client: object) -> str:
    """As a pane of that person's would: their endpoint only, its key from the vault, its
    base URL checked again just before the call."""
    if owner_id is None:
        return DELETED
    resolve = sync_to_async(own_models_for_owner, thread_sensitive=False)
    own = (await resolve(owner_id, [model_key])).get(model_key)
    if own is None or own.model is None:
        return own.refusal if own is not None else DELETED
    try:
        await recheck_base_url(own.model.base_url)
    except EgressRefused as refused:
        return f"{own.model.display_name}: failed — {refused}"
    with public_only(settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS):
        return await check(own.model, client, own.credentials)


async def run_credential_check(credential_id: int, reply_to: str) -> None:
    """Test a saved credential with the first catalog model of its provider reached at
    its server, record how it went on its row, and push the sentence to ``reply_to``."""
    ctx = context()
    with ctx.http.lease() as client:
        sentence, passed = await _check_credential(credential_id, client)
    if passed is not None:
        await sync_to_async(_record, thread_sensitive=False)(credential_id, passed, sentence)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_to, sentence)
        pipe.expire(reply_to, REPLY_TTL_S)
        await pipe.execute()


async def _check_credential(credential_id: int, client: object) -> tuple[str, bool | None]:
    from playground.models import Credential
    from playground.worker import keys

    rows = await sync_to_async(keys.load, thread_sensitive=False)([credential_id])
    row: Credential | None = rows.get(credential_id)
    if row is None:
        return "This key was deleted.", None
    models = await sync_to_async(catalog, thread_sensitive=False)()
    model = next(
        (
            m
            for m in models.values()
            if m.provider == row.provider and model_base_url(m) == row.base_url
        ),
        None,
    )
    if model is None:
        return (
            f"{row.label}: no model of the catalog is reached at {row.base_url} any more, "
            "so there is nothing to test it with.",
            False,
        )
    opened = keys.open_for(row, model)
    if opened.refusal:
        return opened.refusal, False
    sentence = await check(model, client, opened.credentials)
    return sentence, ": connected;" in sentence


def _record(credential_id: int, passed: bool, sentence: str) -> None:
    from django.utils import timezone

    from playground.models import Credential

    Credential.objects.filter(pk=credential_id).update(
        test_passed=passed, tested_at=timezone.now(), test_message=sentence[:500]
    )
