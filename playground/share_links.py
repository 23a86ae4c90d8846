"""Share links: a read-only capability to one session, and how guessing them is limited.

A link is a random token (``secrets.token_urlsafe(32)``: 256 bits) of which only the SHA-256
is stored; the owner sees the token once, in the link's URL. Whoever holds the URL opens the
session read-only if the link lets them (``access.share_link_for_viewer``: its audience,
expiry, revocation, the session not deleted). Every way in by token (the page, its
websocket, forking, exports) goes through :func:`open_link`, which counts tries per client
address and per signed-in person, so that tokens cannot be enumerated.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from playground.access import share_link_for_viewer
from playground.models import Audience, Session, ShareLink, SitePolicy
from playground.models.sharing import hash_token
from playground.redis_sync import redis_client

TOKEN_BYTES = 32

#: How long a new link lasts, as the Share panel offers it (days; None: until revoked).
EXPIRIES: dict[str, int | None] = {"never": None, "1": 1, "7": 7, "30": 30}
EXPIRY_CHOICES = [("never", "Never"), ("1", "1 day"), ("7", "7 days"), ("30", "30 days")]


class ShareRefused(Exception):
    """A link the owner asked for and cannot have; the message says why."""


class TooManyTries(Exception):
    """Too many share tokens tried from one address or by one person this minute."""


def create_link(session: Session, user: Any, audience: str, expiry: str) -> tuple[ShareLink, str]:
    """A new link to ``session`` (the caller checked it is ``user``'s) and its token, which
    is not kept anywhere: the caller shows it once."""
    if audience not in Audience.values:
        raise ShareRefused("Pick who may open the link.")
    if audience == Audience.ANYONE and not SitePolicy.current().allow_public_links:
        raise ShareRefused(
            "This site allows links only for signed-in members of your teams; "
            "pick that audience instead."
        )
    if expiry not in EXPIRIES:
        raise ShareRefused("Pick how long the link lasts.")
    days = EXPIRIES[expiry]
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = ShareLink.objects.create(
        session=session,
        token_hash=hash_token(token),
        audience=audience,
        created_by_id=user.pk,
        expires_at=None if days is None else timezone.now() + timedelta(days=days),
    )
    return link, token


def revoke(link: ShareLink) -> bool:
    """Revoke the link now; False when it already was (a conditional update: the first
    revocation's time stays)."""
    return bool(
        ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


@dataclass
class LinkRow:
    """A link as the owner's Share panel lists it."""

    link: ShareLink
    state: str  # "Active", "Revoked", "Expired", …
    usable: bool


def links_of(session: Session) -> list[LinkRow]:
    """The session's links, newest first, each with what it does now."""
    public = SitePolicy.current().allow_public_links
    now = timezone.now()
    return [_row(link, now, public) for link in session.share_links.order_by("-created_at")]


def _row(link: ShareLink, now: datetime, public: bool) -> LinkRow:
    if link.revoked_at is not None:
        return LinkRow(link, "Revoked", False)
    if link.expires_at is not None and link.expires_at <= now:
        return LinkRow(link, "Expired", False)
    if link.audience == Audience.ANYONE and not public:
        return LinkRow(link, "Active, for your teams only: the site turned public links off", True)
    return LinkRow(link, "Active", True)


def record_opening(link: ShareLink, viewer: Any) -> None:
    """Note when someone other than the owner last opened the link (one conditional
    update, at most one a minute per link)."""
    if viewer is not None and viewer.is_authenticated and viewer.pk == link.session.owner_id:
        return
    now = timezone.now()
    ShareLink.objects.filter(
        Q(last_opened_at__isnull=True) | Q(last_opened_at__lt=now - timedelta(minutes=1)),
        pk=link.pk,
    ).update(last_opened_at=now)


def open_link(user: Any, client: str, token: str) -> ShareLink:
    """The link ``token`` opens for ``user`` coming from address ``client``: counted as a
    try of that address (and person) first, so that parallel requests cannot try more than
    the limit between them; a token that opens is then taken back from the counts, so only
    bad tokens add up. Raises TooManyTries once over either limit (nothing is looked up),
    else Http404 (access.share_link_for_viewer) for a token that opens nothing."""
    counted = _count_try(user, client)
    link = share_link_for_viewer(user, token)
    _take_back(counted)
    return link


def _windows(user: Any, client: str, now: float) -> list[tuple[str, int]]:
    window = int(now // 60)
    limits = [(f"pg:share:tries:ip:{client}:{window}", settings.PLAYGROUND_SHARE_TRIES_PER_IP)]
    if user is not None and user.is_authenticated:
        key = f"pg:share:tries:user:{user.pk}:{window}"
        limits.append((key, settings.PLAYGROUND_SHARE_TRIES_PER_USER))
    return [(key, most) for key, most in limits if most]


def _count_try(user: Any, client: str) -> list[str]:
    now = time.time()
    limits = _windows(user, client or "unknown", now)
    if not limits:
        return []
    with redis_client().pipeline(transaction=False) as pipe:
        for key, _most in limits:
            pipe.incr(key)
            pipe.expire(key, 120)
        counts = pipe.execute()[::2]
    keys = [key for key, _most in limits]
    if any(count > most for count, (_key, most) in zip(counts, limits, strict=True)):
        _take_back(keys)  # a refused request looked nothing up
        raise TooManyTries(
            f"Too many share links were tried from here in the last minute; "
            f"try again in {60 - int(now % 60)} s."
        )
    return keys


def _take_back(keys: list[str]) -> None:
    if keys:
        redis_client().eval(_TAKE_BACK, len(keys), *keys)


# A count back at zero goes, so a good token leaves nothing behind in Redis.
_TAKE_BACK = (
    "for _, key in ipairs(KEYS) do "
    "if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end end"
)
