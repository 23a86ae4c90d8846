"""A browser that signed in to an account before keeps its own count of failed tries
(playground/signin_devices.py, OWASP's device cookies): strangers who fail an account's
sign-in lock it for strangers only, and its owner still signs in from a browser used
before; a cookie that is tampered with, borrowed from another account or too old counts as
a stranger's; a browser that fails its own limit is locked and no one else is."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from tests.conftest import PASSWORD
from tests.playground.signin_helpers import ADDRESS, _fixed_clock, all_at_once, checked, sign_in

pytestmark = pytest.mark.django_db

__all__ = ["_fixed_clock", "checked"]  # fixtures

LOCKED_FOR_STRANGERS = (
    "Too many failed sign-ins for this account; try again in 8 minutes."
    " A browser you signed in with before can sign in now."
)
LOCKED_BROWSER = "Too many failed sign-ins from this browser; try again in 8 minutes."


def browser_used_by(
    user: Any, ip: str = ADDRESS, url: str = "/login/", password: str = PASSWORD
) -> Client:
    """A browser in which ``user`` signed in and then signed out: it keeps their device
    cookie."""
    browser = Client(REMOTE_ADDR=ip)
    assert browser.post(url, {"username": user.username, "password": password}).status_code == 302
    browser.post("/logout/")
    return browser


def device_cookie(browser: Client) -> tuple[str, str]:
    (name,) = [name for name in browser.cookies if name.startswith("pg_device_")]
    return name, browser.cookies[name].value


def same_browser(browser: Client, ip: str = ADDRESS) -> Client:
    """Another client holding ``browser``'s device cookie (one per thread)."""
    copy = Client(REMOTE_ADDR=ip)
    name, value = device_cookie(browser)
    copy.cookies[name] = value
    return copy


def post(browser: Client, username: str, password: str, url: str = "/login/") -> Any:
    return browser.post(url, {"username": username, "password": password})


def signed_in(browser: Client) -> bool:
    return browser.get("/keys/").status_code == 200


def test_an_attackers_failures_lock_strangers_out_but_the_owner_signs_in_from_a_browser_used_before(
    owner: Any, checked: list[str]
) -> None:
    owners_browser = browser_used_by(owner)
    checked.clear()

    # 40 guesses at once, one from the owner's own address: five passwords are checked.
    guesses = all_at_once(
        lambda n=n: sign_in(owner.username, f"guess-{n}", ip=f"10.0.0.{n}" if n else ADDRESS)
        for n in range(40)
    )
    stranger = sign_in(owner.username, PASSWORD, ip="198.51.100.4")

    assert Counter(g.status_code for g in guesses) == {200: 5, 429: 35}
    assert len(checked) == 5
    assert stranger.status_code == 429  # even with the right password: not checked
    assert stranger["Retry-After"] == "450"
    assert LOCKED_FOR_STRANGERS in stranger.content.decode()
    assert len(checked) == 5

    # The owner, from the browser used before and the same address, mistypes once, then
    # signs in.
    mistyped = post(owners_browser, owner.username, "correct horse battery stapel")
    assert mistyped.status_code == 200
    assert "That username and password do not match." in mistyped.content.decode()
    assert post(owners_browser, owner.username, PASSWORD).status_code == 302
    assert signed_in(owners_browser)


@pytest.mark.django_db(transaction=True)  # the tries' threads read the account
def test_parallel_tries_from_one_browser_check_no_more_passwords_than_its_limit(
    owner: Any, checked: list[str]
) -> None:
    """A browser that fails its own limit (3 here) is locked, and no one else is: not the
    owner's other browser, not strangers (their limit is untouched), not its address."""
    laptop = browser_used_by(owner)
    phone = browser_used_by(owner, ip="198.51.100.4")
    checked.clear()

    copies = [same_browser(laptop) for _ in range(12)]
    tries = all_at_once(
        lambda copy=copy, n=n: post(copy, owner.username, f"guess-{n}")
        for n, copy in enumerate(copies)
    )
    refused = post(laptop, owner.username, PASSWORD)

    assert Counter(t.status_code for t in tries) == {200: 3, 429: 9}
    assert len(checked) == 3
    assert refused.status_code == 429
    assert refused["Retry-After"] == "450"
    assert LOCKED_BROWSER in refused.content.decode()
    assert not signed_in(laptop)
    assert len(checked) == 3
    assert post(phone, owner.username, PASSWORD).status_code == 302
    assert sign_in(owner.username, PASSWORD).status_code == 302  # a stranger, same address


def _wrong_signature(cookies: dict[str, str], owners: tuple[str, str], _other: Any) -> None:
    name, value = owners
    cookies[name] = value[:-1] + ("A" if value[-1] != "A" else "B")


def _unsigned(cookies: dict[str, str], owners: tuple[str, str], _other: Any) -> None:
    name, value = owners
    cookies[name] = value.rsplit(":", 2)[0]  # the account's tag and a nonce, no signature


def _another_accounts(cookies: dict[str, str], _owners: tuple[str, str], other: Any) -> None:
    name, value = device_cookie(browser_used_by(other))
    cookies[name] = value


def _another_accounts_renamed(cookies: dict[str, str], owners: tuple[str, str], other: Any) -> None:
    _name, value = device_cookie(browser_used_by(other))
    cookies[owners[0]] = value


def _too_old(cookies: dict[str, str], owners: tuple[str, str], _other: Any) -> None:
    name, value = owners
    payload = value.rsplit(":", 2)[0]
    signer = signing.get_cookie_signer(salt=name + "playground.signin_devices")
    past = signing.b62_encode(int(time.time()) - 366 * 86_400)
    timestamped = f"{payload}:{past}"
    cookies[name] = f"{timestamped}:{signer.signature(timestamped)}"


@pytest.mark.parametrize(
    "tamper", [_wrong_signature, _unsigned, _another_accounts, _another_accounts_renamed, _too_old]
)
def test_a_tampered_borrowed_or_old_device_cookie_is_a_strangers(
    owner: Any,
    outsider: Any,
    checked: list[str],
    tamper: Callable[[dict[str, str], tuple[str, str], Any], None],
) -> None:
    cookies: dict[str, str] = {}
    tamper(cookies, device_cookie(browser_used_by(owner)), outsider)
    checked.clear()
    browser = Client(REMOTE_ADDR=ADDRESS)
    for name, value in cookies.items():
        browser.cookies[name] = value

    # Its failures are counted against the account's limit for strangers...
    statuses = [post(browser, owner.username, "wrong").status_code for _ in range(5)]
    stranger = sign_in(owner.username, PASSWORD, ip="198.51.100.4")
    # ...and its tries are refused with theirs.
    refused = post(browser, owner.username, PASSWORD)

    assert statuses == [200] * 5
    assert stranger.status_code == 429
    assert refused.status_code == 429
    assert LOCKED_FOR_STRANGERS in refused.content.decode()
    assert len(checked) == 5


def test_a_new_password_voids_the_device_cookies_given_before(
    owner: Any, checked: list[str]
) -> None:
    """A device cookie, once stolen, gave its thief that browser's tries until it expired;
    changing the password now ends that, for every browser signed in before."""
    thiefs_copy = same_browser(browser_used_by(owner), ip="203.0.113.9")
    owner.set_password("a new one, after the theft")
    owner.save()
    # A browser signed in since: its cookie counts.
    owners_browser = browser_used_by(owner, password="a new one, after the theft")
    for n in range(5):  # strangers lock the account for strangers
        sign_in(owner.username, f"guess-{n}", ip=f"10.0.1.{n}")
    checked.clear()

    stolen = post(thiefs_copy, owner.username, "another guess")

    assert stolen.status_code == 429
    assert LOCKED_FOR_STRANGERS in stolen.content.decode()
    assert checked == []  # no password checked for the old cookie's holder
    assert post(owners_browser, owner.username, "a new one, after the theft").status_code == 302
    assert signed_in(owners_browser)


def test_a_locked_address_does_not_stop_a_browser_used_before(owner: Any) -> None:
    owners_browser = browser_used_by(owner)
    for n in range(20):
        sign_in(f"user{n}", "wrong")
    locked = sign_in(owner.username, PASSWORD)

    assert locked.status_code == 429
    assert "Too many failed sign-ins from this address; try again in 8 minutes." in (
        locked.content.decode()
    )
    assert post(owners_browser, owner.username, PASSWORD).status_code == 302


def test_the_device_cookie_is_for_scripts_unreadable_same_site_long_lived_and_new_each_time(
    owner: Any,
) -> None:
    browser = Client(REMOTE_ADDR=ADDRESS)
    first = post(browser, owner.username, PASSWORD)
    (name,) = [name for name in first.cookies if name.startswith("pg_device_")]
    cookie = first.cookies[name]
    second = post(Client(REMOTE_ADDR=ADDRESS), owner.username, PASSWORD)

    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # not behind TLS here
    assert cookie["max-age"] == 365 * 86_400
    assert cookie["path"] == "/"
    assert owner.username not in name + cookie.value
    assert second.cookies[name].value != cookie.value  # a new nonce for each sign-in


def test_behind_tls_the_device_cookie_is_secure(settings: Any, owner: Any) -> None:
    settings.SESSION_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client(REMOTE_ADDR=ADDRESS).post(
        "/login/",
        {"username": owner.username, "password": PASSWORD},
        HTTP_X_FORWARDED_PROTO="https",
    )

    (name,) = [name for name in response.cookies if name.startswith("pg_device_")]
    assert response.cookies[name]["secure"]


def test_an_admin_signs_in_to_the_admin_from_a_browser_used_before(
    django_user_model: Any,
) -> None:
    root = django_user_model.objects.create_superuser("root", "", PASSWORD)
    admins_browser = browser_used_by(root, url="/admin/login/")
    for _ in range(5):
        sign_in("root", "wrong", url="/admin/login/")

    stranger = sign_in("root", PASSWORD, url="/admin/login/")
    response = post(admins_browser, "root", PASSWORD, url="/admin/login/")

    assert stranger.status_code == 429
    assert LOCKED_FOR_STRANGERS in stranger.content.decode()
    assert response.status_code == 302
    assert admins_browser.get("/admin/").status_code == 200
