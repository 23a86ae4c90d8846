"""A person's own endpoints as models in their Model picker.

A model of an endpoint is known by the key ``mine:<endpoint id>:<model id>`` (the model id
may itself hold ':' and '/'), is shown as "<endpoint name> · <model id>" and streams
through the ``openai_compatible`` adapter. The catalog stays global and cached per
process; a person's endpoints are read per request, in one query, and only when a request
needs them. The worker resolves the same keys again, for the owner of the turn's session
only, and is the one place that decrypts their keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q
from django.views.decorators.debug import sensitive_variables

from playground import vault
from playground.catalog import CatalogModel, catalog
from playground.egress import check_user_base_url
from playground.models import CustomEndpoint
from providers.base import Credentials

PREFIX = "mine"
PROVIDER = "openai_compatible"
DELETED = "This endpoint was deleted; pick another model."


def model_key(endpoint_id: int, model_id: str) -> str:
    return f"{PREFIX}:{endpoint_id}:{model_id}"


def parse_model_key(key: str) -> tuple[int, str] | None:
    """(endpoint id, model id) of a ``mine:`` key; None for any other key."""
    parts = key.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    endpoint_id, model_id = parts[1], parts[2]
    if not (endpoint_id.isascii() and endpoint_id.isdigit() and model_id):
        return None
    return int(endpoint_id), model_id


def endpoint_model(
    endpoint: CustomEndpoint, model_id: str, user_id: int | None = None
) -> CatalogModel:
    """One model of ``endpoint``; ``user_id``: who picks it (their own endpoint's key is
    "your" key, a teammate's shared one a team key)."""
    return CatalogModel(
        key=model_key(endpoint.pk, model_id),
        display_name=f"{endpoint.name} · {model_id}",
        provider=PROVIDER,
        model_id=model_id,
        base_url=endpoint.base_url,
        concurrency=settings.PLAYGROUND_ENDPOINT_CONCURRENCY,
        # The person knows what their server takes; when it refuses images or tools, its
        # own error becomes the pane's sentence.
        vision=True,
        video=True,
        audio=True,
        tools=True,
        key_scope="user" if user_id is None or endpoint.owner_id == user_id else "team",
        key_label=endpoint.name,
    )


def models_for_user(user: Any, picked: Iterable[str] | None = None) -> dict[str, CatalogModel]:
    """Every model ``user`` may pick, by key: the catalog's, then their own endpoints'.

    With ``picked`` (the keys a form names), only the endpoints those keys name are read,
    and nothing at all when none is a ``mine:`` key: a Send of catalog models costs no
    query. Someone else's endpoint is never among the models, so its key is unknown.
    """
    models = catalog()
    if user is None or not user.is_authenticated:
        return models
    rows = CustomEndpoint.objects.filter(visible_to(user.pk)).distinct()
    if picked is not None:
        wanted = {parsed[0] for key in picked if (parsed := parse_model_key(key))}
        if not wanted:
            return models
        rows = rows.filter(pk__in=wanted)
    own = {
        model.key: model
        for endpoint in rows.only("pk", "name", "base_url", "model_ids", "owner_id")
        for model in (endpoint_model(endpoint, m, user.pk) for m in endpoint.model_ids)
    }
    return {**models, **own} if own else models


def visible_to(user_id: int) -> Q:
    """The endpoints a person may pick models of: their own, and those shared with a team
    they are in."""
    return Q(owner_id=user_id) | Q(team__memberships__user_id=user_id)


def check_base_url(url: str) -> str:
    """``url`` normalized, or EgressRefused: the one egress rule for an endpoint's URL, at
    save time and again in the worker just before a call."""
    return check_user_base_url(url, settings.PLAYGROUND_ALLOWED_PRIVATE_HOSTS)


async def recheck_base_url(url: str) -> None:
    """:func:`check_base_url` just before a call (a pane's, or Test connection's): the name
    may resolve elsewhere by now. Off the event loop, as the lookup blocks."""
    await sync_to_async(check_base_url, thread_sensitive=False)(url)


@dataclass(frozen=True)
class OwnModel:
    """What the worker needs to call one model of an endpoint, or why it must not."""

    model: CatalogModel | None
    credentials: Credentials
    refusal: str = ""


def own_models_for_owner(owner_id: int, keys: Iterable[str]) -> dict[str, OwnModel]:
    """The ``mine:`` keys among ``keys`` resolved for user ``owner_id``, a session's owner
    or the person testing a connection (worker only: keys are decrypted here); one query,
    none without such keys."""
    return _resolve(keys, owner_id)


@sensitive_variables("api_key")
def _resolve(keys: Iterable[str], user_id: int) -> dict[str, OwnModel]:
    wanted = {key: parsed for key in set(keys) if (parsed := parse_model_key(key))}
    if not wanted:
        return {}
    rows = {
        row.pk: row
        for row in CustomEndpoint.objects.filter(
            visible_to(user_id), pk__in={pk for pk, _ in wanted.values()}
        ).distinct()
    }
    resolved: dict[str, OwnModel] = {}
    for key, (endpoint_id, model_id) in wanted.items():
        row = rows.get(endpoint_id)
        if row is None:
            resolved[key] = OwnModel(None, Credentials(), DELETED)
            continue
        if model_id not in row.model_ids:
            refusal = f"{model_id} is no longer one of the models of {row.name}."
            resolved[key] = OwnModel(None, Credentials(), refusal)
            continue
        try:
            api_key = vault.decrypt(row.key_ciphertext) if row.key_ciphertext else ""
        except vault.VaultError as error:
            resolved[key] = OwnModel(None, Credentials(), f"{row.name}: {error}")
            continue
        resolved[key] = OwnModel(
            endpoint_model(row, model_id, user_id), Credentials(api_key=api_key)
        )
    return resolved
