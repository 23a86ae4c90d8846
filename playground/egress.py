"""Where the playground may send a request: base URLs that people (not site admins) supply.

A user's custom endpoint (an OpenAI-compatible server, a gateway) must be a public http(s)
address: a name that resolves to a private, loopback, link-local, shared, multicast or
reserved address is refused, so nobody can make the worker reach the machine's own
services or the cloud metadata endpoint. The operator may allow named hosts for everyone
with ``PLAYGROUND_ALLOWED_PRIVATE_HOSTS``. A catalog entry's base URL typed in Django admin
is held to the same rule (staff are not the operator), with
``PLAYGROUND_CATALOG_PRIVATE_HOSTS`` as its allowed hosts; the providers' default URLs and
the operator's ``PLAYGROUND_<NAME>_BASE_URL`` (Ollama and the local model live on loopback)
are not checked. The worker's client never follows redirects nor uses the environment's
proxy variables, and a credential is sent only to the base URL it belongs to.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async

Resolver = Callable[[str, int], Iterable[str]]


class EgressRefused(ValueError):
    pass


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one (::ffff:127.0.0.1, and 6to4's 2002:7f00:1::)
        # is where the packets end up: it must be public too.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and not is_public(str(embedded)):
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def check_user_base_url(
    url: str,
    allowed_hosts: Iterable[str] = (),
    resolve: Resolver = _resolve,
    schemes: Iterable[str] = ("http", "https"),
) -> str:
    """``url`` normalized, or :class:`EgressRefused` with a sentence saying why. Every form
    of an address is resolved as the connection would resolve it (``getaddrinfo``: so
    2130706433, 0177.0.0.1, 0x7f.0.0.1 and 127.1 are all 127.0.0.1) before it is judged."""
    parts = urlsplit(url.strip())
    if parts.scheme not in set(schemes) or not parts.hostname:
        raise EgressRefused("The base URL must start with http:// or https:// and name a host.")
    if parts.username or parts.password:
        raise EgressRefused("Put credentials in the key field, not in the base URL.")
    host = parts.hostname.lower().rstrip(".")
    if host in {h.lower() for h in allowed_hosts}:
        return url.strip().rstrip("/")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = list(resolve(host, port))
    except (OSError, UnicodeError):
        raise EgressRefused(f"{host} does not resolve to an address.") from None
    if not addresses:
        raise EgressRefused(f"{host} does not resolve to an address.")
    if refused := refusal(host, addresses):
        raise EgressRefused(refused)
    return url.strip().rstrip("/")


async def recheck(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """:func:`check_user_base_url` just before a call: the name may resolve elsewhere by
    now. Off the event loop, as the lookup blocks."""
    check = sync_to_async(check_user_base_url, thread_sensitive=False)
    await check(url, list(allowed_hosts), schemes=("http", "https", "ws", "wss"))


def refusal(host: str, addresses: Iterable[str]) -> str:
    """Why ``host`` may not be reached at ``addresses`` (a sentence), or "" if it may."""
    private = [a for a in addresses if not is_public(a)]
    if not private:
        return ""
    return (
        f"{host} resolves to a private or local address ({private[0]}); only public "
        "servers can be used here. A site admin can add private servers to the catalog."
    )


# Set while the worker calls a base URL that a person supplied: the hosts allowed besides
# public addresses. The worker's sockets (playground/worker/sockets.py) then resolve the
# name themselves, refuse a private address, and connect to the address they checked.
_public_only: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar(
    "public_only", default=None
)


@contextlib.contextmanager
def public_only(allowed_hosts: Iterable[str]) -> Iterator[None]:
    """Within this block (this task), connections go to public addresses only, or to
    ``allowed_hosts``. The check before a call resolves the name once and the connection
    again: a name whose answer changes in between (DNS rebinding) would pass the one and
    reach a private address with the other. This checks the address connected to."""
    token = _public_only.set(frozenset(h.lower().rstrip(".") for h in allowed_hosts))
    try:
        yield
    finally:
        _public_only.reset(token)


def connection_rule(host: str) -> bool:
    """True if a connection to ``host`` must go to a checked public address now."""
    allowed = _public_only.get()
    return allowed is not None and host.lower().rstrip(".") not in allowed
