"""A base URL a user supplies must reach a public server: names that resolve to private,
loopback, link-local or metadata addresses are refused with a sentence."""

from __future__ import annotations

from typing import Any

import pytest
from django.forms.models import model_to_dict

from playground.egress import EgressRefused, check_user_base_url
from playground.models import CatalogEntry


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


# LibreChat CVE-2026-31943 class: every way of writing a private address. Resolved by the
# real resolver (getaddrinfo, as the connection resolves them), not a table.
PRIVATE_FORMS = [
    ("http://2130706433/v1", "127.0.0.1"),  # decimal
    ("http://0177.0.0.1/v1", "127.0.0.1"),  # octal
    ("http://0x7f.0.0.1/v1", "127.0.0.1"),  # hex
    ("http://0x7f000001/v1", "127.0.0.1"),
    ("http://127.1/v1", "127.0.0.1"),  # short form
    ("http://localhost:8081/v1", "127.0.0.1"),
    ("http://0/v1", "0.0.0.0"),
    ("http://0.0.0.0/v1", "0.0.0.0"),
    ("http://10.0.0.1/v1", "10.0.0.1"),
    ("http://172.16.0.1/v1", "172.16.0.1"),
    ("http://192.168.0.1/v1", "192.168.0.1"),
    ("http://100.64.0.1/v1", "100.64.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),  # cloud metadata
    ("http://[::1]/v1", "::1"),
    ("http://[fc00::1]/v1", "fc00::1"),
    ("http://[fd12:3456::1]/v1", "fd12:3456::1"),
    ("http://[fe80::1]/v1", "fe80::1"),
    ("http://[::ffff:127.0.0.1]/v1", "::ffff:127.0.0.1"),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/v1", "::ffff:127.0.0.1"),
    ("http://[::ffff:a9fe:a9fe]/v1", "::ffff:169.254.169.254"),
    ("http://[2002:7f00:1::1]/v1", "2002:7f00:1::1"),  # 6to4 around 127.0.0.1
    ("http://[64:ff9b::7f00:1]/v1", "64:ff9b::7f00:1"),  # NAT64 around 127.0.0.1
]


@pytest.mark.parametrize(("url", "address"), PRIVATE_FORMS)
def test_librechat_cve_2026_31943_every_form_of_a_private_address_is_refused(
    url: str, address: str
) -> None:
    with pytest.raises(EgressRefused, match="private or local address") as refused:
        check_user_base_url(url)
    assert f"({address})" in str(refused.value)


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "address"), PRIVATE_FORMS)
def test_librechat_cve_2026_31943_a_catalog_entry_cannot_be_pointed_at_them_in_admin(
    url: str, address: str, settings: Any
) -> None:
    from playground.admin.catalog import CatalogEntryForm

    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = []
    entry = CatalogEntry.objects.get(key="openai:gpt-4.1-mini")
    form = CatalogEntryForm({**model_to_dict(entry), "base_url": url}, instance=entry)
    assert not form.is_valid()
    [said] = form.errors["base_url"]
    # Django's URL field refuses the odd spellings (decimal, octal, hex, short) itself.
    refused = f"({address}); a catalog entry may point at a private server only if" in said
    assert refused or said == "Enter a valid URL."


@pytest.mark.django_db
def test_a_catalog_entry_may_point_at_the_operators_urls_and_allowed_hosts(
    settings: Any,
) -> None:
    from playground.admin.catalog import CatalogEntryForm

    entry = CatalogEntry.objects.get(key="ollama:llama3.2")

    def valid(url: str) -> bool:
        return CatalogEntryForm(
            {**model_to_dict(entry), "base_url": url}, instance=entry
        ).is_valid()

    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = []
    assert valid("http://127.0.0.1:11434")  # Ollama's own default
    assert not valid("http://127.0.0.1:6379")
    settings.PLAYGROUND_CATALOG_PRIVATE_HOSTS = ["127.0.0.1"]
    assert valid("http://127.0.0.1:6379")
