"""Device cookies: what tells the sign-in that this browser signed in to an account before.

After a successful sign-in the browser gets one cookie for that account, named by a keyed
digest of the account's username (``pg_device_<tag>``), holding the same tag and a random
nonce, signed with SECRET_KEY (Django's signed cookies, the cookie's name in the
signature) and dated: HttpOnly, SameSite=Lax, Secure behind TLS, kept
PLAYGROUND_SIGNIN_DEVICE_DAYS. Each sign-in gives a new nonce. A cookie whose signature or
date is wrong, or that names another account, is no device cookie: its tries count as a
stranger's.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.crypto import salted_hmac

_SALT = "playground.signin_devices"


def _tag(username: str) -> str:
    """The account, as a device cookie names it: not its username, which a cookie jar
    would show, nor a plain hash of it, which anyone could compute."""
    return salted_hmac(_SALT, username, algorithm="sha256").hexdigest()[:24]


def _max_age() -> int:
    return int(settings.PLAYGROUND_SIGNIN_DEVICE_DAYS * 86_400)


def device_for(request: HttpRequest, username: str) -> str | None:
    """The nonce of this browser's device cookie for the account ``username``, if it holds
    a valid one; else None (a stranger)."""
    tag = _tag(username)
    value = request.get_signed_cookie(
        f"pg_device_{tag}", default=None, salt=_SALT, max_age=_max_age()
    )
    if value is None:
        return None
    named, _, nonce = value.partition(":")
    return nonce if named == tag and nonce else None


def remember_device(response: HttpResponseBase, username: str) -> None:
    """Give the browser a new device cookie for the account ``username``."""
    tag = _tag(username)
    response.set_signed_cookie(
        f"pg_device_{tag}",
        f"{tag}:{secrets.token_urlsafe(16)}",
        salt=_SALT,
        max_age=_max_age(),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
