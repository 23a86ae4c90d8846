"""Pages and htmx requests while the database does not answer: 503 with a sentence, no
traceback, no word of the database's; and the next request, once it answers, works.

The database is away for real (tests/playground/helpers.py ``database_away``): PostgreSQL
refusing connections, or SQLite locked past its timeout, whichever the run uses."""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import types
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.db.utils import DatabaseErrorWrapper
from django.test import RequestFactory
from django.urls import get_resolver

from playground.database_away import SENTENCE, is_database_away
from playground.models import Turn
from tests.playground.helpers import database_away, make_turn, send_form

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


def words_of_the_database() -> list[str]:
    """What a page must never show: the error's names and the connection's settings."""
    conf = connection.settings_dict
    words = ["Traceback", "Error", "psycopg", "sqlite", "postgres://", str(conf["NAME"])]
    return words + [str(conf[k]) for k in ("HOST", "PORT", "USER", "PASSWORD") if conf.get(k)]


def test_pages_while_the_database_is_away_say_so_with_503_then_work_again(
    owner_client: Any, owner: Any
) -> None:
    turn = make_turn(owner, [("echo", {})], "What is a newt?")
    session_page = f"/s/{turn.session_id}/"
    secret = words_of_the_database()
    with database_away():
        for path in ("/", session_page, "/keys/", "/usage/", "/sessions/", "/admin/"):
            page = owner_client.get(path)
            body = page.content.decode()
            assert page.status_code == 503, path
            assert page["Retry-After"] == "5"
            assert SENTENCE in body
            assert f'<a href="{path}">Try again</a>' in body
            assert [word for word in secret if word in body] == [], path
    page = owner_client.get(session_page)
    assert page.status_code == 200
    assert "What is a newt?" in page.content.decode()


def test_a_send_while_the_database_is_away_gets_the_sentence_alone_and_saves_nothing(
    owner_client: Any, owner: Any, clean_redis: Any
) -> None:
    clean_redis.delete("celery")
    turn = make_turn(owner, [("echo", {})], "First")
    send = f"/s/{turn.session_id}/send/"
    with database_away():
        answer = owner_client.post(send, send_form("Second"), **HTMX)
        estimate = owner_client.post(f"/s/{turn.session_id}/estimate/", send_form("Se"), **HTMX)
    assert answer.status_code == estimate.status_code == 503
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert answer["Retry-After"] == "5"
    assert answer.content.decode() == SENTENCE
    assert estimate.content.decode() == SENTENCE
    assert list(Turn.objects.values_list("prompt", flat=True)) == ["First"]
    assert clean_redis.llen("celery") == 0  # no task for a turn that was not saved

    again = owner_client.post(send, send_form("Second"), **HTMX)
    assert again.status_code == 200
    assert list(Turn.objects.order_by("index").values_list("prompt", flat=True)) == [
        "First",
        "Second",
    ]


def test_a_send_the_database_left_midway_is_not_counted_against_the_minute(
    owner_client: Any, owner: Any, settings: Any, monkeypatch: Any, clean_redis: Any
) -> None:
    """The database goes away after the person was read and the Send counted: the Send
    gets the sentence, and the Sends-per-minute limit does not count it."""
    clean_redis.delete("celery")
    settings.PLAYGROUND_FAIR_SENDS_PER_MINUTE = 1
    turn = make_turn(owner, [("echo", {})], "First")
    send = f"/s/{turn.session_id}/send/"
    send_view = importlib.import_module("playground.views.send")
    reading = send_view.read_compose
    outage = contextlib.ExitStack()

    def goes_away_then_reads(*args: Any) -> Any:
        outage.enter_context(database_away())
        return reading(*args)

    monkeypatch.setattr(send_view, "read_compose", goes_away_then_reads)
    with outage:
        answer = owner_client.post(send, send_form("Second"), **HTMX)
    monkeypatch.undo()
    assert answer.status_code == 503
    assert answer.content.decode() == SENTENCE

    again = owner_client.post(send, send_form("Second"), **HTMX)
    assert "turns in the last minute" not in again.content.decode()
    assert Turn.objects.filter(prompt="Second").count() == 1


def test_signing_in_while_the_database_is_away_says_so_too(client: Any, owner: Any) -> None:
    from tests.conftest import PASSWORD

    assert client.get("/login/").status_code == 200  # the form needs no database
    with database_away():
        answer = client.post("/login/", {"username": owner.username, "password": PASSWORD})
    assert answer.status_code == 503
    assert SENTENCE in answer.content.decode()
    assert "Try again</a>" not in answer.content.decode()  # a POST: not a link to repeat it
    signed_in = client.post("/login/", {"username": owner.username, "password": PASSWORD})
    assert signed_in.status_code == 302


def test_the_database_away_outside_a_view_gets_the_same_503() -> None:
    """Django's handler500, for what fails in a middleware (the session saved after the
    view), answers the same when the error is the database's, and a plain 500 else."""
    handler = get_resolver().resolve_error_handler(500)
    request = RequestFactory().get("/s/1/")
    try:
        raise OperationalError("connection to server at 127.0.0.1, port 5 failed")
    except OperationalError:
        away = handler(request)
    try:
        raise ValueError("a fault of ours")
    except ValueError:
        fault = handler(request)
    assert away.status_code == 503
    assert SENTENCE in away.content.decode()
    assert "port 5" not in away.content.decode()
    assert fault.status_code == 500
    assert SENTENCE not in fault.content.decode()


def sqlite_error(tmp_path: Any, sql: str, lock: bool) -> BaseException:
    """The error Django raises for ``sql`` on a real SQLite file (locked by another
    connection when ``lock``), as its backend wraps sqlite3's."""
    path = str(tmp_path / "db.sqlite3")
    sqlite3.connect(path).execute("CREATE TABLE IF NOT EXISTS t (x)").connection.commit()
    locker = sqlite3.connect(path, isolation_level=None)
    if lock:
        locker.execute("BEGIN EXCLUSIVE")
    ours = sqlite3.connect(path, timeout=0.05)
    try:
        backend = types.SimpleNamespace(Database=sqlite3, errors_occurred=False)
        with DatabaseErrorWrapper(backend):  # type: ignore[arg-type]
            ours.execute(sql)
    except Exception as error:
        return error
    finally:
        locker.close()
        ours.close()
    raise AssertionError(f"{sql} did not fail")


def test_only_a_locked_sqlite_is_the_database_away(tmp_path: Any) -> None:
    """SQLite locked past its timeout is a moment to wait; a missing table is a fault of
    ours, a 500, never "try again"."""
    locked = sqlite_error(tmp_path, "INSERT INTO t VALUES (1)", lock=True)
    missing = sqlite_error(tmp_path, "SELECT * FROM nowhere", lock=False)
    assert isinstance(locked, OperationalError) and isinstance(missing, OperationalError)
    assert is_database_away(locked)
    assert not is_database_away(missing)
