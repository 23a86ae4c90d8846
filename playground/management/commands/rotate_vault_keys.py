"""Encrypt every saved key again under the first vault key (after a new one was put first in
PLAYGROUND_VAULT_KEY), so that the old vault key can then be dropped."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from playground import vault
from playground.models import CustomEndpoint


class Command(BaseCommand):
    help = "Encrypt every saved endpoint key again under the first key of PLAYGROUND_VAULT_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated, unreadable = 0, []
        for endpoint in CustomEndpoint.objects.exclude(key_ciphertext="").only(
            "pk", "name", "key_ciphertext"
        ):
            try:
                token = vault.rotate(endpoint.key_ciphertext)
            except vault.VaultError:
                unreadable.append(endpoint.pk)
                continue
            # Conditional: a key saved again meanwhile is not overwritten with the old one.
            rotated += CustomEndpoint.objects.filter(
                pk=endpoint.pk, key_ciphertext=endpoint.key_ciphertext
            ).update(key_ciphertext=token)
        self.stdout.write(f"Encrypted {rotated} saved key(s) again under the first vault key.")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} saved key(s) cannot be read with the vault keys now set "
                f"(endpoint ids {', '.join(map(str, unreadable))}); their owners must enter "
                "them again."
            )
