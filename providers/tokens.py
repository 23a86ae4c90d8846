"""One cache for the tokens that adapters get by exchanging credentials (Qianfan v1's
OAuth access tokens, Pangu's IAM tokens), and the one retry a refused token earns."""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

import httpx

from providers.base import ChatRequest, Event, ProviderError
from providers.http import HTTPProvider


@dataclasses.dataclass(frozen=True)
class Token:
    value: str
    #: When to stop using it, in seconds since the epoch (a safety margin before it
    #: really expires is the exchanger's to take off).
    expires: float


class TokenCache:
    """Tokens by key (a hash of the credentials, never the credentials themselves), reused
    until they expire.

    One lock per key (and event loop) makes concurrent streams wait for a single exchange
    instead of each starting their own. A token the server refused is never handed out
    again for its key, even should another stream put it back.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._refused: dict[str, str] = {}
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def fresh(self, key: str, now: float) -> str | None:
        """The cached token for ``key`` if it is still good."""
        token = self._tokens.get(key)
        if token is None or now >= token.expires or token.value == self._refused.get(key):
            return None
        return token.value

    async def get(
        self, key: str, clock: Callable[[], float], exchange: Callable[[], Awaitable[Token]]
    ) -> str:
        """A good token for ``key``, from ``exchange`` if none is cached."""
        value = self.fresh(key, clock())
        if value is not None:
            return value
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(key, asyncio.Lock()):
            value = self.fresh(key, clock())  # another stream may have exchanged meanwhile
            if value is not None:
                return value
            token = await exchange()
            self._tokens[key] = token
            return token.value

    def forget(self, key: str, value: str) -> None:
        """Drop ``value``, which the server refused, unless it was already replaced."""
        self._refused[key] = value
        token = self._tokens.get(key)
        if token is not None and token.value == value:
            del self._tokens[key]

    def clear(self) -> None:
        self._tokens.clear()
        self._refused.clear()


class TokenRefused(ProviderError):
    """The server refused ``token`` before any answer came: a fresh exchange may help.

    It is the error to report as it stands, should the fresh token be refused too.
    """

    def __init__(self, error: ProviderError, token: str) -> None:
        super().__init__(
            error.kind,
            error.message,
            permanent=error.permanent,
            status=error.status,
            retry_after=error.retry_after,
        )
        self.token = token


class TokenAuth(HTTPProvider):
    """An adapter whose requests carry a token from :attr:`tokens`. When the server refuses
    it (:class:`TokenRefused`), the token is dropped and the request sent once more."""

    tokens: TokenCache

    def token_key(self, request: ChatRequest) -> str:
        """The cache key of the request's credentials: a hash, never the credentials."""
        raise NotImplementedError

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        for attempt in (1, 2):
            try:
                async with aclosing(super().open_stream(client, request)) as events:
                    async for event in events:
                        yield event
                return
            except TokenRefused as refused:
                self.tokens.forget(self.token_key(request), refused.token)
                if attempt == 2:
                    raise
