"""The vault: API keys people save, encrypted at rest.

A key is stored only as a Fernet token (AES-128-CBC with an HMAC-SHA256, so a token that
was altered or made under another key is refused, never decrypted to garbage) plus a hint
of its last four characters for display. The worker decrypts it just before a call; no
screen ever shows it again.

The vault's own keys come from ``PLAYGROUND_VAULT_KEY`` (settings, checked at start-up;
``make run`` keeps one in var/vault_key): one or more Fernet keys, the first encrypts, all
decrypt, so keys can be rotated (put the new one first, run ``manage.py rotate_vault_keys``,
then drop the old one). A key derived from SECRET_KEY (HKDF-SHA256 with a fixed label) is
always the last to decrypt, so what earlier versions saved under it can still be read (and
rotated away); it encrypts only in development (DEBUG on, SECRET_KEY set, no vault key), as
settings refuse to start otherwise.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Changing this label makes every saved key unreadable under the derived vault key.
DERIVATION_LABEL = b"llm-playground vault key v1"
HINT_CHARS = 4
SHORTEST_HINTED = 12  # a key shorter than this shows no characters at all


class VaultError(Exception):
    """A saved key that cannot be read back; the message is a sentence for the person."""


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from Django's SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_LABEL)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@functools.lru_cache(maxsize=4)
def _fernet(vault_keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    keys = [Fernet(k.encode()) for k in vault_keys]
    keys.append(Fernet(derived_key(secret_key)))
    return MultiFernet(keys)


def _vault() -> MultiFernet:
    return _fernet(tuple(settings.PLAYGROUND_VAULT_KEYS), settings.SECRET_KEY)


def encrypt(secret: str) -> str:
    """The token to store for ``secret`` (ASCII)."""
    return _vault().encrypt(secret.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The secret a token holds, or :class:`VaultError` saying what to do."""
    try:
        return _vault().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise VaultError(
            "The saved key cannot be read with this server's vault keys (was "
            "PLAYGROUND_VAULT_KEY or SECRET_KEY changed?); enter the key again."
        ) from None


def rotate(token: str) -> str:
    """The same secret encrypted under the first vault key, or :class:`VaultError`."""
    try:
        return _vault().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise VaultError("A saved key cannot be read with this server's vault keys.") from None


def hint(secret: str) -> str:
    """What may be shown of a secret: "…" and its last four characters ("…" alone for a
    short one, where four characters would give away too much of it)."""
    if len(secret) < SHORTEST_HINTED:
        return "…"
    return "…" + secret[-HINT_CHARS:]


def seal(parts: Mapping[str, str], binding: str) -> str:
    """The token to store for a credential's ``parts``, bound to ``binding`` (its row,
    owner, provider and server: ``Credential.binding``). Fernet authenticates the whole
    token, so the binding inside cannot be changed without the vault's keys."""
    payload = json.dumps({"bound": binding, "parts": dict(parts)}, separators=(",", ":"))
    return encrypt(payload)


def open_sealed(token: str, binding: str) -> dict[str, str]:
    """The parts a token from :func:`seal` holds, when it was sealed for ``binding``;
    otherwise :class:`VaultError` (a token copied from another row, a row whose owner,
    provider or server was changed behind the playground's back)."""
    try:
        payload = json.loads(decrypt(token))
    except ValueError:
        raise VaultError("This saved key is damaged; enter it again.") from None
    if not isinstance(payload, dict) or payload.get("bound") != binding:
        raise VaultError(
            "This saved key belongs to another credential (or its owner or server was "
            "changed outside the playground); enter it again."
        )
    parts = payload.get("parts")
    if not isinstance(parts, dict):
        raise VaultError("This saved key is damaged; enter it again.")
    return {str(k): str(v) for k, v in parts.items()}
