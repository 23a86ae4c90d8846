"""One cache for the tokens that adapters get by exchanging credentials (Qianfan v1's
OAuth access tokens, Pangu's IAM tokens), the one retry a refused token earns, and the
exchange's bounds: it is made within the answer's first-byte wait, and its answer is read
within the request's limits, as a stream's is."""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, ClassVar

import httpx

from providers import reading
from providers.base import ChatRequest, ErrorKind, Event, ProviderError, size_words
from providers.http import PLAIN, HTTPProvider


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

    def latest(self, key: str) -> str | None:
        """The token last had for ``key``, even should it have expired since, unless the
        server refused it."""
        token = self._tokens.get(key)
        if token is None or token.value == self._refused.get(key):
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
    it (:class:`TokenRefused`), the token is dropped and the request sent once more.

    The token is had (:meth:`token`) before the request is sent, within the answer's
    first-byte wait (:meth:`HTTPProvider.authorize`): a token service that never answers,
    or answers without end, holds the answer no longer than a chat server would. Its
    answer is read by :meth:`exchange_answer`, within the request's limits."""

    tokens: TokenCache
    #: Who answers the exchange, as its sentences name it.
    token_service: ClassVar[str]

    def token_key(self, request: ChatRequest) -> str:
        """The cache key of the request's credentials: a hash, never the credentials."""
        raise NotImplementedError

    async def token(self, client: httpx.AsyncClient, request: ChatRequest) -> str:
        """The request's token: the cached one, else one had by exchange."""
        raise NotImplementedError

    def url_and_body(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        """The chat request's URL and body, worked out before the token is had, so that
        a request refused for them is refused before any exchange."""
        return self.url(request), self.body(request)

    def uses_token(self, request: ChatRequest) -> bool:
        return True

    async def authorize(self, client: httpx.AsyncClient, request: ChatRequest) -> None:
        self.url_and_body(request)
        if self.uses_token(request):
            await self.token(client, request)

    async def authorized_token(self, client: httpx.AsyncClient, request: ChatRequest) -> str:
        """The token :meth:`authorize` had, for the request (even should it have expired
        since); else one had now."""
        return self.tokens.latest(self.token_key(request)) or await self.token(client, request)

    def authorize_timed_out(self, request: ChatRequest) -> ProviderError:
        seconds = request.limits.first_byte_seconds
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"{self.token_service} did not answer within {seconds:g} s"
            + (" in all" if request.first_byte_shared else "")
            + ", so the model was not asked",
            permanent=False,
        )

    async def exchange_answer(
        self, client: httpx.AsyncClient, request: ChatRequest, url: str, **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        """POST the exchange to ``url`` (``kwargs`` as httpx takes them) and read its
        answer: a success's body up to ``limits.line_bytes`` (a longer one is refused with
        a sentence), an error's up to ``limits.error_body_bytes``. Its headers are bounded
        by httpcore (100 KB); its time by the first-byte wait it is made within."""
        headers = {**kwargs.pop("headers", {}), **PLAIN}
        async with client.stream("POST", url, headers=headers, **kwargs) as response:
            if not response.is_success:
                return response, await reading.read_capped(response, request.limits)
            limit = request.limits.line_bytes
            raw = await reading.read_at_most(response, limit, self.token_service)
        if raw is None:
            raise ProviderError(
                ErrorKind.UPSTREAM,
                f"{self.token_service} answered with more than {size_words(limit)}, the "
                "most read here at once, so the model was not asked",
                permanent=True,
            )
        return response, raw

    async def open_stream(
        self, client: httpx.AsyncClient, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        clock = asyncio.get_running_loop().time
        began = clock()
        for attempt in (1, 2):
            if attempt == 2:  # the fresh token's try waits what the first left
                left = request.first_byte_wait - (clock() - began)
                request = dataclasses.replace(request, first_byte_left=left)
            try:
                async with aclosing(super().open_stream(client, request)) as events:
                    async for event in events:
                        yield event
                return
            except TokenRefused as refused:
                self.tokens.forget(self.token_key(request), refused.token)
                if attempt == 2:
                    raise
