"""The live path: how a pane's answer reaches the browser while it streams.

``response_log`` is the durable record of a streaming pane (one Redis Stream per response,
written by the worker's publisher); ``consumer`` is the websocket that tails those logs
and sends ``fragments`` (htmx out-of-band swaps); ``response_end`` is the one way a pane ends
(row first, then the log's end entry), used by the worker, Stop and the ``watchdog``;
``db_threads`` runs the consumer's database work off asgiref's shared thread.

This package runs in the web process (and ``response_log``/``response_end`` in the worker too); it
never imports :mod:`playground.worker`.
"""
