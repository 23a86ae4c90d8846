"""A base URL a user supplies must reach a public server: names that resolve to private,
loopback, link-local or metadata addresses are refused with a sentence."""

from __future__ import annotations

import pytest

from playground.egress import EgressRefused, check_user_base_url


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


DNS = resolver(
    {
        "api.example.com": ["93.184.216.34"],
        "sneaky.example.com": ["93.184.216.34", "10.0.0.5"],
        "metadata.example.com": ["169.254.169.254"],
        "loop.example.com": ["127.0.0.1"],
        "v6loop.example.com": ["::1"],
        "mapped.example.com": ["::ffff:192.168.1.1"],
        "cgnat.example.com": ["100.64.0.1"],
        "ollama.internal": ["10.1.2.3"],
    }
)


def test_a_public_server_is_accepted() -> None:
    url = "https://api.example.com/v1/"
    assert check_user_base_url(url, resolve=DNS) == "https://api.example.com/v1"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://sneaky.example.com/v1", "private or local address (10.0.0.5)"),
        ("http://metadata.example.com/", "(169.254.169.254)"),
        ("http://loop.example.com:8081/v1", "(127.0.0.1)"),
        ("http://v6loop.example.com/v1", "(::1)"),
        ("http://mapped.example.com/v1", "(::ffff:192.168.1.1)"),
        ("http://cgnat.example.com/v1", "(100.64.0.1)"),
        ("http://127.0.0.1:11434", "(127.0.0.1)"),
        ("http://nowhere.example.com", "does not resolve"),
        ("ftp://api.example.com", "must start with http"),
        ("https://user:pw@api.example.com/v1", "not in the base URL"),
    ],
)
def test_private_and_odd_urls_are_refused(url: str, says: str) -> None:
    table = DNS if "127.0.0.1" not in url else resolver({"127.0.0.1": ["127.0.0.1"]})
    with pytest.raises(EgressRefused, match=says.replace("(", r"\(").replace(")", r"\)")):
        check_user_base_url(url, resolve=table)


def test_an_admin_can_allow_a_private_host() -> None:
    assert check_user_base_url(
        "http://ollama.internal:11434", allowed_hosts=["ollama.internal"], resolve=DNS
    ) == ("http://ollama.internal:11434")
