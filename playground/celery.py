"""The Celery app. Workers run ``celery -A playground worker --pool threads``: each task
hands its turn to the worker process's one event loop (see playground.worker_loop)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["playground"])
