"""The worker's wing: everything only the Celery worker process runs.

The claim of a turn's panes (``claim``), the endpoint slots (``slots``) and the per-key rate
limits (``rate_limits``), the run of a turn (``runner``), the publisher that coalesces
deltas into the response logs (``publisher``), the process's one event loop and its httpx
clients (``event_loop``), their plain-asyncio sockets (``sockets``), and the worker half of
Test connection (``connection_check``).

Its one door is :mod:`playground.tasks`, which imports this package only inside the task
bodies: the web process enqueues tasks without ever loading it (a test checks
``sys.modules`` after importing the ASGI application). Nothing outside this package
imports it.
"""
