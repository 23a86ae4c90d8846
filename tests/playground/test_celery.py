"""A worker keeps a task thread's database connection as Django keeps a request's, by
CONN_MAX_AGE; Celery's Django fix-up alone would close it before and after every task (a
new SQLite connection, or a new PostgreSQL login, for every turn's claim)."""

from __future__ import annotations

from typing import Any

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from playground.celery import app
from playground.models import Session
from playground.tasks import run_turn


def a_task(fixup: DjangoWorkerFixup) -> None:
    """What a worker does around a task, with a query in between."""
    fixup.on_task_prerun(sender=run_turn)
    task_prerun.send(sender=run_turn, task_id="t", task=run_turn, args=(), kwargs={})
    Session.objects.count()
    fixup.on_task_postrun(sender=run_turn)
    task_postrun.send(sender=run_turn, task_id="t", task=run_turn, args=(), kwargs={})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("max_age", "kept"), [(60, True), (0, False)])
def test_a_task_threads_connection_lives_as_long_as_conn_max_age(
    max_age: int, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixup = DjangoWorkerFixup(app)  # what `celery worker` installs for a Django project
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", max_age)
    connection.close()
    connection.ensure_connection()  # opened under this CONN_MAX_AGE
    opened: Any = connection.connection

    a_task(fixup)
    a_task(fixup)

    assert (connection.connection is opened) is kept
