"""A streaming answer's text so far, in the database: about once a second per pane.

The response's log in Redis is what its pane shows while it streams; this checkpoint is what
survives when Redis loses the log (a restart without persistence, the last second of an
append-only file) and the worker dies too: the watchdog ends the pane with the longer of
the two (playground.live.watchdog). One UPDATE for every pane of the worker that has news,
only of rows still streaming, so a checkpoint that arrives after the pane ended changes
nothing. Plain SQL, as the claim's (worker/claim.py): it runs every second under load.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from playground.models import Response, Status

#: How often the publisher writes what each streaming pane has shown (seconds).
CHECKPOINT_EVERY_S = 1.0

_R = Response._meta.db_table


def save_partial(parts: list[tuple[int, str, str]]) -> int:
    """Write (response id, text, reasoning) for each response still streaming, in one
    statement; returns how many rows it wrote."""
    if not parts:
        return 0
    q = connection.ops.quote_name
    cases = " ".join(["WHEN %s THEN %s"] * len(parts))
    ids = ", ".join(["%s"] * len(parts))
    sql = (
        f"UPDATE {q(_R)} SET {q('text')} = CASE id {cases} END, "  # noqa: S608
        f"{q('reasoning')} = CASE id {cases} END WHERE id IN ({ids}) AND status = %s"
    )
    params: list[int | str] = []
    for pk, text, _reasoning in parts:
        params += [pk, text]
    for pk, _text, reasoning in parts:
        params += [pk, reasoning]
    params += [pk for pk, _, _ in parts]
    params.append(Status.STREAMING)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)
    except (OperationalError, InterfaceError):
        # The database away: this thread's connection may be broken for good; the next
        # checkpoint (a second later) opens a new one.
        close_old_connections()
        raise
