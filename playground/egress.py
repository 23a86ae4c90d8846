"""Where the playground may send a request: base URLs that people (not site admins) supply.

A user's custom endpoint (an OpenAI-compatible server, a gateway) must be a public http(s)
address: a name that resolves to a private, loopback, link-local, shared, multicast or
reserved address is refused, so nobody can make the worker reach the machine's own
services or the cloud metadata endpoint. Site admins configure the catalog in Django admin
and may point it anywhere (Ollama and the local model live on loopback); they can also
allow named hosts for everyone with ``PLAYGROUND_ALLOWED_PRIVATE_HOSTS``. The worker's
client never follows redirects, and a credential is sent only to the base URL it belongs to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Iterable[str]]


class EgressRefused(ValueError):
    pass


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def check_user_base_url(
    url: str, allowed_hosts: Iterable[str] = (), resolve: Resolver = _resolve
) -> str:
    """``url`` normalized, or :class:`EgressRefused` with a sentence saying why."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
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
    private = [a for a in addresses if not is_public(a)]
    if private:
        raise EgressRefused(
            f"{host} resolves to a private or local address ({private[0]}); only public "
            "servers can be used here. A site admin can add private servers to the catalog."
        )
    return url.strip().rstrip("/")
