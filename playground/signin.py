"""Sign-in, on the site and in the admin, with failed tries limited so that guessing is slow
and a stranger cannot lock the owner out (OWASP, "Slow Down Online Guessing Attacks with
Device Cookies").

A browser that signs in to an account gets a device cookie for that account
(``playground.signin_devices``). A try that comes with a valid one is counted against that
browser only (PLAYGROUND_SIGNIN_TRIES_PER_DEVICE), so its failures lock that browser and
nothing else. Every other try, a stranger's, is counted against the account's limit for
strangers (PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT) and its client address's
(PLAYGROUND_SIGNIN_TRIES_PER_IP): an attacker who spends them locks the account for
strangers only, and its owner still signs in from a browser used before.

Each try is counted in Redis before the password is checked (one pipeline of ``INCR`` and
``EXPIRE`` per limit, in a fixed window of PLAYGROUND_SIGNIN_WINDOW_SECONDS), so parallel
requests cannot check more passwords than the limit between them; a try over a limit is
refused (429) with a sentence saying when to try again, and nothing is checked. A sign-in
that succeeds is taken back from the counts, so only failures add up. Strangers' tries at
an account are counted by its username as typed (case aside), whether or not such an
account exists, so the answer says nothing about which do.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseBase

from playground.redis_sync import redis_client
from playground.signin_devices import device_for, remember_device


class TooManySignIns(Exception):
    """Too many failed sign-ins in this window for an account from strangers, from a
    browser, or from an address; the message is the sentence to show. ``retry_after``:
    seconds until the window ends."""

    def __init__(self, sentence: str, retry_after: int) -> None:
        super().__init__(sentence)
        self.retry_after = retry_after


# What a refusal says, by the limit that was reached; then when to try again.
_REFUSALS = {
    "account": "Too many failed sign-ins for this account; try again in {wait}."
    " A browser you signed in with before can sign in now.",
    "device": "Too many failed sign-ins from this browser; try again in {wait}.",
    "ip": "Too many failed sign-ins from this address; try again in {wait}.",
}


def count_try(username: str, client: str, device: str | None = None) -> list[str]:
    """Count one try at ``username`` from ``client``, against ``device`` alone when the
    browser holds a valid device cookie for the account (its nonce), else against the
    account's limit for strangers and the address's. Returns the keys counted (to take
    back when it succeeds). Raises TooManySignIns, counting nothing, once over a limit."""
    now = time.time()
    span = settings.PLAYGROUND_SIGNIN_WINDOW_SECONDS
    window = int(now // span)
    if device:
        limits = [("device", device, settings.PLAYGROUND_SIGNIN_TRIES_PER_DEVICE)]
    else:
        account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        limits = [
            ("account", account, settings.PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT),
            ("ip", client or "unknown", settings.PLAYGROUND_SIGNIN_TRIES_PER_IP),
        ]
    counted = [
        (f"pg:signin:{kind}:{who}:{window}", kind, most) for kind, who, most in limits if most
    ]
    if not counted:
        return []
    with redis_client().pipeline(transaction=False) as pipe:
        for key, _kind, _most in counted:
            pipe.incr(key)
            pipe.expire(key, span + 60)
        counts = pipe.execute()[::2]
    keys = [key for key, _kind, _most in counted]
    over = [kind for count, (_k, kind, most) in zip(counts, counted, strict=True) if count > most]
    if over:
        take_back(keys)  # a refused try checked nothing
        left = max(1, math.ceil(span - now % span))
        raise TooManySignIns(_REFUSALS[over[0]].format(wait=_duration(left)), left)
    return keys


def take_back(keys: list[str]) -> None:
    if keys:
        redis_client().eval(_TAKE_BACK, len(keys), *keys)


# A count back at zero goes, so a good sign-in leaves nothing behind in Redis.
_TAKE_BACK = (
    "for _, key in ipairs(KEYS) do "
    "if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end end"
)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


# Where a sign-in form leaves its outcome on the request for ``counted_sign_in``: the
# refusal, or the account signed in to.
_OUTCOME = "_playground_sign_in"


class CountedSignIn(AuthenticationForm):
    """Django's sign-in form, each try counted first (``count_try``). After a refusal,
    ``refused`` holds it (for the sentence)."""

    refused: TooManySignIns | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password") or self.request is None:
            return super().clean()
        client = self.request.META.get("REMOTE_ADDR", "")
        try:
            counted = count_try(username, client, device_for(self.request, username))
        except TooManySignIns as refused:
            self.refused = refused
            setattr(self.request, _OUTCOME, refused)
            raise ValidationError(str(refused), code="too_many_tries") from None
        cleaned = super().clean()  # raises for a wrong password: the try stays counted
        take_back(counted)
        setattr(self.request, _OUTCOME, self.get_user().get_username())
        return cleaned


class CountedAdminSignIn(CountedSignIn, AdminAuthenticationForm):
    """The admin's sign-in form (staff only), counted the same way."""


def counted_sign_in(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A sign-in view whose form is a CountedSignIn, finished: a refusal is a 429 with
    Retry-After; a success gives the browser a device cookie for the account."""

    @functools.wraps(view)
    def finished(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        outcome = getattr(request, _OUTCOME, None)
        if isinstance(outcome, TooManySignIns):
            response.status_code = 429
            response["Retry-After"] = str(outcome.retry_after)
        elif isinstance(outcome, str):
            remember_device(response, outcome)
        return response

    return finished


sign_in = counted_sign_in(LoginView.as_view(authentication_form=CountedSignIn))
