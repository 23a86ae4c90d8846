"""Encrypt every saved key again under the first vault key (after a new one was put first in
PLAYGROUND_VAULT_KEY), so that the old vault key can then be dropped: the keys of people's
endpoints, and the credentials (personal, teams', the organisation's), whose tokens keep
the binding to their row inside (``vault.rotate`` re-encrypts the payload unchanged)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from playground import vault
from playground.models import Credential, CustomEndpoint


class Command(BaseCommand):
    help = (
        "Encrypt every saved endpoint key and credential again under the first key of "
        "PLAYGROUND_VAULT_KEY."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        lost_endpoints: list[int] = []
        lost_credentials: list[int] = []
        for endpoint in CustomEndpoint.objects.exclude(key_ciphertext="").only(
            "pk", "name", "key_ciphertext"
        ):
            try:
                token = vault.rotate(endpoint.key_ciphertext)
            except vault.VaultError:
                lost_endpoints.append(endpoint.pk)
                continue
            # Conditional: a key saved again meanwhile is not overwritten with the old one.
            rotated += CustomEndpoint.objects.filter(
                pk=endpoint.pk, key_ciphertext=endpoint.key_ciphertext
            ).update(key_ciphertext=token)
        for credential in Credential.objects.exclude(ciphertext="").only("pk", "ciphertext"):
            try:
                token = vault.rotate(credential.ciphertext)
            except vault.VaultError:
                lost_credentials.append(credential.pk)
                continue
            rotated += Credential.objects.filter(
                pk=credential.pk, ciphertext=credential.ciphertext
            ).update(ciphertext=token)
        self.stdout.write(f"Encrypted {rotated} saved key(s) again under the first vault key.")
        ids = [
            f"{kind} ids {', '.join(map(str, pks))}"
            for kind, pks in (("endpoint", lost_endpoints), ("credential", lost_credentials))
            if pks
        ]
        if ids:
            count = len(lost_endpoints) + len(lost_credentials)
            raise CommandError(
                f"{count} saved key(s) cannot be read with the vault keys now set "
                f"({'; '.join(ids)}); their owners must enter them again."
            )
