"""Celery's broker transport: kombu's Redis transport with one fix, so that a worker rides
out a Redis restart instead of exiting (settings.CELERY_BROKER_TRANSPORT).

What happens without it (kombu 5.7, Celery 5.7), when the broker connection drops while
the worker waits in BRPOP for the next task:

1. Celery's consumer closes the lost connection (``Connection.collect``). kombu's
   ``Channel.close`` first reads the reply of the BRPOP in flight (kombu #1733, so that a
   task popped just then is not lost); on a dead socket that read raises a connection
   error, which leaves the channel half closed. ``collect`` then drops the transport's
   connection details (``transport.client = None``).
2. Celery closes the connection once more; the half-closed channel goes on closing and
   gives its unacknowledged tasks back (``restore_unacked``), for which it builds a new
   Redis pool from those details: ``AttributeError: 'NoneType' object has no attribute
   'hostname'``. ``ignore_errors`` lets only connection errors pass, so Celery logs
   "Unrecoverable error" and shuts the worker down (the kombu #970 class of bug).
3. Had it lived, the same error came again when a task that was running ends: its
   acknowledgement goes to the old channel, which builds a pool the same way.

The fix: a channel whose connection is closed says so with a connection error, which
Celery expects there: the close finishes, the consumer connects again, and a late
acknowledgement is logged as not made. Tasks that were running go on in their threads
(``CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS`` is off). What is lost is
only the acknowledgement, and a task whose acknowledgement was not made is delivered again
after the visibility timeout, if Redis kept it: ``run_turn`` then claims nothing.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("The broker connection of this channel was closed.")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
