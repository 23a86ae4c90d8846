"""What the sign-in tests share: a clock fixed in the middle of a window, small limits, the
usernames whose password was checked, and browsers that sign in."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.contrib.auth import forms as auth_forms
from django.db import connections
from django.test import Client

from playground import signin

NOW = 1_800_000_450.0  # 450 s into a 900 s window: no test straddles two windows
ADDRESS = "203.0.113.7"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    class Clock:
        @staticmethod
        def time() -> float:
            return NOW

    monkeypatch.setattr(signin, "time", Clock)
    settings.PLAYGROUND_SIGNIN_WINDOW_SECONDS = 900
    settings.PLAYGROUND_SIGNIN_TRIES_PER_DEVICE = 3
    settings.PLAYGROUND_SIGNIN_TRIES_PER_ACCOUNT = 5
    settings.PLAYGROUND_SIGNIN_TRIES_PER_IP = 20


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The usernames whose password was checked, in order."""
    seen: list[str] = []
    real = auth_forms.authenticate

    def authenticate(request: Any = None, **credentials: Any) -> Any:
        seen.append(credentials.get("username", ""))
        return real(request, **credentials)

    monkeypatch.setattr(auth_forms, "authenticate", authenticate)
    return seen


def sign_in(username: str, password: str, ip: str = ADDRESS, url: str = "/login/") -> Any:
    """A try from a browser that never signed in (a stranger)."""
    return Client(REMOTE_ADDR=ip).post(url, {"username": username, "password": password})


def all_at_once(tries: Iterable[Callable[[], T]]) -> list[T]:
    """Run every try at the same moment, each in its own thread with its own database
    connection; their results, in order."""
    tries = list(tries)
    start = threading.Barrier(len(tries))

    def run(attempt: Callable[[], T]) -> T:
        try:
            start.wait(timeout=30)
            return attempt()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(tries)) as pool:
        return list(pool.map(run, tries, timeout=120))
