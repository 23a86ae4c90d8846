"""Sign-in is rate-limited (playground/signin.py): failed tries from browsers that never
signed in (strangers) per account and per client address in a window, then every such try
is refused with a 429 and a sentence saying when to try again, the password not even
checked; tries all at once get no more than the limit; the admin's sign-in is counted the
same way. Browsers that signed in before: tests/playground/test_signin_devices.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.playground.signin_helpers import _fixed_clock, all_at_once, checked, sign_in

pytestmark = pytest.mark.django_db

__all__ = ["_fixed_clock", "checked"]  # fixtures


def test_failed_sign_ins_to_one_account_stop_at_the_limit(owner: Any, checked: list[str]) -> None:
    statuses = [sign_in(owner.username, "wrong").status_code for _ in range(5)]
    refused = sign_in(owner.username, PASSWORD)  # even the right password, until it ends

    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused["Retry-After"] == "450"
    assert (
        "Too many failed sign-ins for this account; try again in 8 minutes."
        " A browser you signed in with before can sign in now." in refused.content.decode()
    )
    assert len(checked) == 5  # the sixth password was never checked
    # From elsewhere, the account is refused too; another account is not.
    assert sign_in(owner.username, PASSWORD, ip="198.51.100.4").status_code == 429
    assert sign_in("someone-else", "wrong").status_code == 200


def test_failed_sign_ins_from_one_address_stop_at_its_limit(checked: list[str]) -> None:
    statuses = [sign_in(f"user{n}", "wrong").status_code for n in range(21)]

    assert statuses == [200] * 20 + [429]
    assert (
        "Too many failed sign-ins from this address; try again in 8 minutes."
        in sign_in("x", "y").content.decode()
    )
    assert sign_in("x", "y", ip="198.51.100.4").status_code == 200


def test_a_good_sign_in_is_not_counted(owner: Any) -> None:
    for _ in range(4):
        assert sign_in(owner.username, "wrong").status_code == 200
    assert sign_in(owner.username, PASSWORD).status_code == 302
    # The four failures still count; the success did not.
    assert sign_in(owner.username, "wrong").status_code == 200
    assert sign_in(owner.username, "wrong").status_code == 429


def test_the_account_is_counted_whatever_case_it_is_typed_in(owner: Any) -> None:
    for name in ["ALICE", "Alice", "alice ", "aLiCe", "alice"]:
        sign_in(name, "wrong")

    assert sign_in("alice", PASSWORD).status_code == 429


def test_parallel_tries_check_no_more_passwords_than_the_limit(
    owner: Any, checked: list[str]
) -> None:
    """40 tries at once at one account, from 40 addresses: five passwords are checked, the
    other 35 are refused without being checked."""
    statuses = all_at_once(
        lambda n=n: sign_in(owner.username, f"guess-{n}", ip=f"10.0.0.{n}").status_code
        for n in range(40)
    )

    assert Counter(statuses) == {200: 5, 429: 35}
    assert len(checked) == 5


def test_the_admin_sign_in_is_counted_too(django_user_model: Any, checked: list[str]) -> None:
    django_user_model.objects.create_superuser("root", "", PASSWORD)
    for _ in range(5):
        assert sign_in("root", "wrong", url="/admin/login/").status_code == 200

    browser = Client(REMOTE_ADDR="203.0.113.7")
    refused = browser.post("/admin/login/", {"username": "root", "password": PASSWORD})

    assert refused.status_code == 429
    assert "Too many failed sign-ins for this account; try again in 8 minutes." in (
        refused.content.decode()
    )
    assert browser.get("/admin/").status_code == 302  # not signed in: sent to sign in
    assert len(checked) == 5


def test_no_limit_when_set_to_zero(settings: Any, owner: Any) -> None:
    settings.PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT = 0
    settings.PLAYGROUND_SIGNIN_TRIES_PER_IP = 0
    for _ in range(8):
        sign_in(owner.username, "wrong")

    assert sign_in(owner.username, PASSWORD).status_code == 302
