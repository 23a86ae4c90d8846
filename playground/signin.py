"""Sign-in, on the site and in the admin, with failed tries limited per account and per
client address.

Each try is counted in Redis before the password is checked (one pipeline of ``INCR`` and
``EXPIRE`` per limit, in a fixed window of PLAYGROUND_SIGNIN_WINDOW_SECONDS), so parallel
requests cannot check more passwords than the limit between them; a try over a limit is
refused with a sentence saying when to try again, and nothing is checked. A sign-in that
succeeds is taken back from the counts, so only failures add up. The account is counted
by its username as typed (case aside), whether or not such an account exists, so the
answer says nothing about which do.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from playground.redis_sync import redis_client


class TooManySignIns(Exception):
    """Too many failed sign-ins for an account or from an address in this window; the
    message is the sentence to show. ``retry_after``: seconds until the window ends."""

    def __init__(self, sentence: str, retry_after: int) -> None:
        super().__init__(sentence)
        self.retry_after = retry_after


def count_try(username: str, client: str) -> list[str]:
    """Count one try at ``username`` from ``client``; the keys counted (to take back when
    it succeeds). Raises TooManySignIns, counting nothing, once over either limit."""
    now = time.time()
    span = settings.PLAYGROUND_SIGNIN_WINDOW_SECONDS
    window = int(now // span)
    account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    limits = [
        (f"pg:signin:account:{account}:{window}", settings.PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT),
        (f"pg:signin:ip:{client or 'unknown'}:{window}", settings.PLAYGROUND_SIGNIN_TRIES_PER_IP),
    ]
    limits = [(key, most) for key, most in limits if most]
    if not limits:
        return []
    with redis_client().pipeline(transaction=False) as pipe:
        for key, _most in limits:
            pipe.incr(key)
            pipe.expire(key, span + 60)
        counts = pipe.execute()[::2]
    keys = [key for key, _most in limits]
    over = [key for count, (key, most) in zip(counts, limits, strict=True) if count > most]
    if over:
        take_back(keys)  # a refused try checked nothing
        left = max(1, math.ceil(span - now % span))
        whose = "this account" if ":account:" in over[0] else "this address"
        raise TooManySignIns(
            f"Too many failed sign-ins for {whose}; try again in {_duration(left)}.", left
        )
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


class CountedSignIn(AuthenticationForm):
    """Django's sign-in form, each try counted first (``count_try``). After a refusal,
    ``refused`` holds it (for the sentence and the 429)."""

    refused: TooManySignIns | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        client = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        try:
            counted = count_try(username, client)
        except TooManySignIns as refused:
            self.refused = refused
            raise ValidationError(str(refused), code="too_many_tries") from None
        cleaned = super().clean()  # raises for a wrong password: the try stays counted
        take_back(counted)
        return cleaned


class CountedAdminSignIn(CountedSignIn, AdminAuthenticationForm):
    """The admin's sign-in form (staff only), counted the same way."""


class SignInView(LoginView):
    authentication_form = CountedSignIn

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.refused is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.refused.retry_after)
        return response
