""" "Test connection": the cheapest call a model allows (one token of answer to "Hi"), run
inside the worker where the key lives, reported as one sentence, always within
``settings.PLAYGROUND_TEST_CONNECTION_SECONDS`` (a server that accepts and never answers
is a sentence too), which is shorter than the web's wait for it
(``playground.connection_tests``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable

from django.conf import settings

from playground.catalog import CatalogModel, catalog
from playground.connection_tests import LAST_CATALOG_TEST, LAST_TEST_TTL_S
from playground.credentials import model_base_url
from playground.egress import EgressRefused, public_only, recheck
from playground.live.db_threads import off_request_thread
from playground.own_models import DELETED, own_models_for_owner, parse_model_key
from playground.worker.event_loop import context
from providers.base import ChatRequest, Credentials, Failure, Message, ParamError, TextDelta

REPLY_TTL_S = 120


async def check(model: CatalogModel, client: object, credentials: Credentials | None = None) -> str:
    """Call ``model`` once with the smallest answer it allows; say how it went, within the
    time limit. ``credentials``: a person's own endpoint's or a saved key, from the vault;
    else the catalog's. A base URL someone typed is checked again just before the call,
    and the call's connections go to the public addresses checked."""
    if model.private_hosts is not None:
        try:
            await recheck(model.base_url, model.private_hosts)
        except EgressRefused as refused:
            return f"{model.display_name}: failed — {refused}"
        with public_only(model.private_hosts):
            return await _within_limit(model, _call(model, client, credentials))
    return await _within_limit(model, _call(model, client, credentials))


async def _within_limit(model: CatalogModel, call: Awaitable[str]) -> str:
    limit = settings.PLAYGROUND_TEST_CONNECTION_SECONDS
    try:
        async with asyncio.timeout(limit):
            return await call
    except TimeoutError:
        return (
            f"{model.display_name}: failed — no answer within {limit:.0f} s (the server "
            "accepted the request but sent nothing back, or could not be reached); check "
            "that it is up and not overloaded, then test again."
        )


async def _call(model: CatalogModel, client: object, credentials: Credentials | None) -> str:
    if credentials is None and model.site_key_refusal:
        return f"{model.display_name}: failed — {model.site_key_refusal}"
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
            models = await off_request_thread(catalog)()
            model = models.get(model_key)
            sentence = (
                await check(model, client)
                if model
                else f"{model_key}: not in the catalog (disabled?)."
            )
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_to, sentence)
        pipe.expire(reply_to, REPLY_TTL_S)
        if parse_model_key(model_key) is None:
            # The catalog's list in admin shows each entry's last test.
            record = json.dumps({"at": time.time(), "sentence": sentence})
            pipe.set(LAST_CATALOG_TEST.format(key=model_key), record, ex=LAST_TEST_TTL_S)
        await pipe.execute()


async def _check_own(model_key: str, owner_id: int | None, client: object) -> str:
    """As a pane of that person's would: their endpoint only, its key from the vault, its
    base URL checked again just before the call."""
    if owner_id is None:
        return DELETED
    resolve = off_request_thread(own_models_for_owner)
    own = (await resolve(owner_id, [model_key])).get(model_key)
    if own is None or own.model is None:
        return own.refusal if own is not None else DELETED
    return await check(own.model, client, own.credentials)


async def run_credential_check(credential_id: int, reply_to: str) -> None:
    """Test a saved credential with the first catalog model of its provider reached at
    its server, record how it went on its row, and push the sentence to ``reply_to``."""
    ctx = context()
    with ctx.http.lease() as client:
        sentence, passed = await _check_credential(credential_id, client)
    if passed is not None:
        await off_request_thread(_record)(credential_id, passed, sentence)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_to, sentence)
        pipe.expire(reply_to, REPLY_TTL_S)
        await pipe.execute()


async def _check_credential(credential_id: int, client: object) -> tuple[str, bool | None]:
    from playground.models import Credential
    from playground.worker import keys

    rows = await off_request_thread(keys.load)([credential_id])
    row: Credential | None = rows.get(credential_id)
    if row is None:
        return "This key was deleted.", None
    models = await off_request_thread(catalog)()
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
