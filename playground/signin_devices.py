"""Device cookies: what tells the sign-in that this browser signed in to an account before.

After a successful sign-in the browser gets one cookie for that account, named by a keyed
digest of the account's username (``pg_device_<tag>``), holding the same tag and a random
nonce, signed with SECRET_KEY (Django's signed cookies, the cookie's name in the
signature) and dated: HttpOnly, SameSite=Lax, Secure behind TLS, kept
PLAYGROUND_SIGNIN_DEVICE_DAYS. Each sign-in gives a new nonce. The cookie also holds a
keyed digest of the account's password hash, so a new password voids every device cookie
given before (a stolen one too). A cookie whose signature or date is wrong, that names
another account, or that was given before the password changed, is no device cookie: its
tries count as a stranger's.
"""

from __future__ import annotations

import hmac
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponseBase
from django.utils.crypto import salted_hmac

_SALT = "playground.signin_devices"


def _tag(username: str) -> str:
    """The account, as a device cookie names it: not its username, which a cookie jar
    would show, nor a plain hash of it, which anyone could compute."""
    return salted_hmac(_SALT, username, algorithm="sha256").hexdigest()[:24]


def _password_mark(username: str) -> str:
    """The account's password, as its device cookies hold it: a digest of its hash ("" for
    no such account), read as the sign-in reads the account (its exact username)."""
    users = get_user_model()._default_manager
    stored = users.filter(**{users.model.USERNAME_FIELD: username}).values_list(
        "password", flat=True
    )
    hashed = next(iter(stored), "")
    if not hashed:
        return ""
    return salted_hmac(f"{_SALT}.password", hashed, algorithm="sha256").hexdigest()[:24]


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
    named, nonce, mark = (value.split(":", 2) + ["", ""])[:3]
    if named != tag or not nonce or not mark:
        return None
    # Read only for a cookie that passed its signature: strangers' tries cost no query.
    return nonce if hmac.compare_digest(mark, _password_mark(username)) else None


def remember_device(response: HttpResponseBase, username: str) -> None:
    """Give the browser a new device cookie for the account ``username``."""
    tag = _tag(username)
    response.set_signed_cookie(
        f"pg_device_{tag}",
        f"{tag}:{secrets.token_urlsafe(16)}:{_password_mark(username)}",
        salt=_SALT,
        max_age=_max_age(),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
