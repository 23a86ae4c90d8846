"""While the database (or Redis) does not answer: a sentence and 503, never a 500 or a
traceback.

PostgreSQL restarting, stopped or unreachable (psycopg's OperationalError and
InterfaceError, which Django re-raises as its own), or SQLite still locked when its timeout
runs out. A page then gets 503 with Retry-After and a plain page saying so; an htmx request
(Send, and every other) gets the sentence alone, which the page shows where the person
looks and keeps what they typed (static/playground/app.js); a websocket is closed with
``SOCKET_CLOSE_CODE``, after which the page tries again, waiting longer each time. No
message of the database's, which could name its host or user, reaches the person.

Redis the same way (the live logs, Stop's flags, the counts of Sends and sign-ins, the
broker): a request that meets it away gets its own sentence, and 503.

Nothing needs to recover by hand once the database is back: PostgreSQL connections are not
kept past a request (settings: ``CONN_MAX_AGE`` 0), every thread that keeps one closes it
when it failed (``close_old_connections``), and the next request opens a new one.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable

import kombu.exceptions
import redis
from channels.auth import AuthMiddleware
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string
from django.views import defaults

log = logging.getLogger(__name__)

SENTENCE = "The playground cannot reach its database just now. Try again in a moment."
REDIS_SENTENCE = (
    "The playground cannot reach Redis, its live store, just now. Try again in a moment."
)
RETRY_AFTER_SECONDS = 5
# What a websocket is closed with when its follow met the database away (a close code of
# the application's range: the htmx extension would retry 1013 at once, every time).
SOCKET_CLOSE_CODE = 4503
# Set in a websocket's scope when its sign-in could not be read (``SignInOrDatabaseAway``).
SCOPE_KEY = "playground.database_away"


def is_database_away(error: BaseException) -> bool:
    """Whether ``error`` says the database does not answer (rather than a fault of ours:
    SQLite's "no such table" is an OperationalError too)."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    cause = error.__cause__
    if isinstance(cause, sqlite3.Error):
        return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)
    return True


def is_redis_away(error: BaseException) -> bool:
    """Whether ``error`` says Redis does not answer: the web's own client, or Celery's
    broker connection as a task is sent."""
    return isinstance(
        error,
        redis.ConnectionError | redis.TimeoutError | kombu.exceptions.OperationalError,
    )


def note(error: BaseException, where: str) -> None:
    """One line in the log, no traceback (an outage would write one per request). The
    driver's first line names the host and port at most, never the password."""
    first = str(error).strip().splitlines()[:1]
    log.warning(
        "%s: %s did not answer (%s: %s)",
        where,
        "Redis" if is_redis_away(error) else "the database",
        type(error).__name__,
        first[0] if first else "",
    )


def away_response(request: HttpRequest, error: BaseException) -> HttpResponse:
    """503 with Retry-After: for htmx the sentence as text, else a page of its own that
    reads nothing (not the person's name: that is in the database too)."""
    note(error, f"{request.method} {request.path}")
    sentence = REDIS_SENTENCE if is_redis_away(error) else SENTENCE
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(sentence, content_type="text/plain; charset=utf-8", status=503)
    else:
        again = request.get_full_path() if request.method in ("GET", "HEAD") else ""
        page = render_to_string(
            "playground/database_away.html", {"sentence": sentence, "again": again}
        )
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    # Said above, in one line: Django would log it again as an error.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class DatabaseAwayMiddleware:
    """A view (or its template) that met the database away answers 503 with the sentence."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_away(exception) or is_redis_away(exception):
            return away_response(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponseBase:
    """``handler500``: what met the database away outside a view (a middleware saving the
    session) gets the same 503; anything else Django's plain 500."""
    error = sys.exception()
    if error is not None and (is_database_away(error) or is_redis_away(error)):
        return away_response(request, error)
    return defaults.server_error(request)


class SignInOrDatabaseAway(AuthMiddleware):
    """Channels' sign-in for websockets, which reads the session and the person from the
    database before any consumer runs: when the database does not answer, the socket is
    left to its consumer, signed out and marked (``SCOPE_KEY``), which closes it with
    ``SOCKET_CLOSE_CODE`` (else daphne would drop it with a traceback in the log)."""

    async def resolve_scope(self, scope: dict[str, object]) -> None:
        try:
            await super().resolve_scope(scope)
        except Exception as error:
            if not is_database_away(error):
                raise
            note(error, f"websocket {scope.get('path', '')}")
            scope["user"]._wrapped = AnonymousUser()  # type: ignore[attr-defined]
            scope[SCOPE_KEY] = True
