"""The live path: how a response reaches the browser while it streams into its pane.

``response_log`` is the durable record of a streaming response (one Redis Stream each,
written by the worker's publisher); ``consumer`` is the websocket that tails those logs
and sends ``fragments`` (htmx out-of-band swaps); ``response_end`` is the one way a
response ends (row first, then the log's end entry), used by the worker, Stop and the
``watchdog``; ``db_threads`` runs the consumer's database work off asgiref's shared thread.

This package runs in the web process (``response_log`` and ``response_end`` in the worker
too); it never imports :mod:`playground.worker`.
"""
