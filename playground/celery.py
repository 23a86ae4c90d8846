"""The Celery app. Workers run ``celery -A playground worker --pool threads``: each task
hands its turn to the worker process's one event loop (see playground.worker.event_loop)."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["playground"])

# Celery's Django fix-up closes the task thread's database connections before and after
# every task (unless CELERY_DB_REUSE_MAX is set; then every so many tasks): a new SQLite
# connection for every turn's claim, whose close checkpoints the WAL, or a new PostgreSQL
# login. The worker keeps connections as Django's requests do, by CONN_MAX_AGE: SQLite's
# are kept, PostgreSQL's closed after each task (bench/streams.py: the claim's first query
# took 3 ms under the light load; docs/performance.md).
app.conf.CELERY_DB_REUSE_MAX = 2**62


@task_prerun.connect
@task_postrun.connect
def _old_connections(**_: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()
