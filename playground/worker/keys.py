"""Opening the credentials a turn's panes were given at Send: the one place a saved
provider key becomes plaintext, in the worker, just before the call.

A credential opens only if it is still enabled, was saved for the very server the model
is reached at now, and its vault token is bound to its own row (``vault.open_sealed``);
otherwise the pane ends with a sentence and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables

from playground import vault
from playground.catalog import CatalogModel
from playground.credentials import model_base_url
from playground.models import Credential
from providers.base import Credentials


@dataclass(frozen=True)
class Opened:
    credentials: Credentials
    refusal: str = ""


def load(ids: Iterable[int]) -> dict[int, Credential]:
    """The rows of ``ids``, one query (none without ids)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.pk: c for c in Credential.objects.filter(pk__in=wanted)}


@sensitive_variables("parts")
def open_for(row: Credential | None, model: CatalogModel) -> Opened:
    if row is None:
        return Opened(Credentials(), "The key this pane was sent with was deleted; send again.")
    if not row.enabled:
        return Opened(Credentials(), f"The key '{row.label}' was disabled; send again.")
    if row.provider != model.provider or row.base_url != model_base_url(model):
        return Opened(
            Credentials(),
            f"The key '{row.label}' was saved for another server than the one "
            f"{model.display_name} is reached at now; it was not sent.",
        )
    try:
        parts = vault.open_sealed(row.ciphertext, row.binding)
    except vault.VaultError as error:
        return Opened(Credentials(), f"The key '{row.label}': {error}")
    api_key = parts.pop("api_key", "")
    return Opened(Credentials(api_key=api_key, extra=parts))
