"""Test connection's answer: the fragment a Test connection button swaps in asks here every
second until the worker's sentence is there (``playground.connection_tests``); without
htmx, a small page that reloads itself. Each ask is one non-blocking read of Redis, so no
request thread waits for a worker. Only the person who asked finds a test: anyone else
gets 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from playground import connection_tests
from playground.access import user_id
from playground.connection_tests import Asked

FRAGMENTS = "playground/_connection_test.html"


def started(request: HttpRequest, asked: Asked, back: str) -> HttpResponse:
    """The answer to a Test connection click: the fragment that asks again in a second
    (htmx), or the test's own page; the sentence at once when nothing could be asked."""
    if getattr(request, "htmx", False):
        if asked.sentence:
            return render(request, f"{FRAGMENTS}#result", {"sentence": asked.sentence})
        return render(request, f"{FRAGMENTS}#waiting", {"token": asked.token})
    if asked.sentence:
        messages.info(request, asked.sentence)
        return redirect(back)
    return redirect("connection_test", asked.token)


@login_required
@require_GET
def connection_test(request: HttpRequest, token: str) -> HttpResponse:
    found = connection_tests.answer(user_id(request.user), token)
    if found is None:
        raise Http404("No such test.")
    if getattr(request, "htmx", False):
        if found.waiting:
            return render(request, f"{FRAGMENTS}#waiting", {"token": token})
        return render(request, f"{FRAGMENTS}#result", {"sentence": found.sentence})
    context = {"token": token, "answer": found}
    return render(request, "playground/connection_test.html", context)
