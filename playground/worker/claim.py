"""The worker's reads and writes between a Send and its first request, in plain SQL.

A claim is on every Send's way to its first token. Through the ORM its three queries cost
about 3 ms of CPU on an idle machine, more than half of it building and compiling the
queries and making model instances that are read once; under load that CPU is taken from
the streams (bench/streams.py, docs/performance.md). The SQL is what the ORM would send,
for SQLite and PostgreSQL alike; table and column names come from the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from playground.models import ContextPolicy, Pane, Response, Session, Status, Turn

_R, _T, _P, _S = (m._meta.db_table for m in (Response, Turn, Pane, Session))


@dataclass(frozen=True)
class TurnText:
    """What a turn said: its prompt, images and videos or recordings (as Turn has them)."""

    prompt: str
    images: list[dict[str, str]]
    media: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class PendingRow:
    """A pending response and its turn, as the claim needs them."""

    pk: int
    session_id: int
    pane_id: int
    model_key: str
    display_name: str
    params: dict[str, Any]
    turn_index: int
    turn: TurnText
    system_prompt: str
    tools: list[dict[str, Any]]
    credential_id: int | None = None  # the saved key chosen at Send
    key_scope: str = ""
    context_policy: str = ContextPolicy.OWN  # the session's (what history each pane gets)
    owner_id: int = 0  # the session's owner (whose endpoints its panes may name)
    # Claimed before by a worker that handed it back as it stopped (worker/shutdown.py):
    # its log has entries already, and this run's follow them.
    resumed: bool = False


def _json(value: Any) -> Any:
    # SQLite hands JSON columns back as text, psycopg as Python values.
    return json.loads(value) if isinstance(value, str) else value


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _in(values: list[int]) -> str:
    return ", ".join(["%s"] * len(values))


def pending_rows(turn_id: int, response_ids: list[int] | None) -> list[PendingRow]:
    """The turn's pending responses (only those of ``response_ids`` when given), in pane
    order, each with its turn."""
    ids = list(response_ids or [])
    if response_ids is not None and not ids:
        return []
    only = f" AND r.id IN ({_in(ids)})" if ids else ""
    sql = (
        "SELECT r.id, t.session_id, r.pane_id, r.model_key, r.display_name, r.params, "  # noqa: S608
        f"t.{_q('index')}, t.prompt, t.images, t.system_prompt, t.tools, r.credential_id, "
        f"r.key_scope, s.context_policy, s.owner_id, r.started_at, t.media FROM {_q(_R)} r "
        f"JOIN {_q(_T)} t ON t.id = r.turn_id JOIN {_q(_P)} p ON p.id = r.pane_id "
        f"JOIN {_q(_S)} s ON s.id = t.session_id "
        f"WHERE r.turn_id = %s AND r.status = %s{only} ORDER BY p.position"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [turn_id, Status.PENDING, *ids])
        found = cursor.fetchall()
    return [
        PendingRow(
            pk=row[0],
            session_id=row[1],
            pane_id=row[2],
            model_key=row[3],
            display_name=row[4],
            params=_json(row[5]) or {},
            turn_index=row[6],
            turn=TurnText(row[7], _json(row[8]) or [], _json(row[16]) or []),
            system_prompt=row[9],
            tools=_json(row[10]) or [],
            credential_id=row[11],
            key_scope=row[12],
            context_policy=row[13],
            owner_id=row[14],
            resumed=row[15] is not None,
        )
        for row in found
    ]


def mark_streaming(pks: list[int], claimed_at: datetime) -> list[int]:
    """Move those of ``pks`` still pending to streaming, stamped ``claimed_at``; return the
    ones this call moved (a task delivered twice, or a Stop meanwhile, gets fewer)."""
    at = connection.ops.adapt_datetimefield_value(claimed_at)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(_R)} SET status = %s, started_at = %s "  # noqa: S608
            f"WHERE id IN ({_in(pks)}) AND status = %s",
            [Status.STREAMING, at, *pks, Status.PENDING],
        )
        if cursor.rowcount == len(pks):
            return pks
        cursor.execute(
            f"SELECT id FROM {_q(_R)} WHERE id IN ({_in(pks)}) "  # noqa: S608
            "AND status = %s AND started_at = %s",
            [*pks, Status.STREAMING, at],
        )
        return [pk for (pk,) in cursor.fetchall()]


@dataclass
class EarlierTurn:
    """An earlier turn of the session as history needs it: what it said, the answer the
    person chose to continue from (when one was chosen and counts), and the answers that
    count, as (pane id, model name, text), in pane order."""

    said: TurnText
    chosen: str | None = None
    answers: list[tuple[int, str, str]] = field(default_factory=list)


def earlier_turns(
    session_id: int, pane_ids: list[int], before_index: int, policy: str
) -> list[EarlierTurn]:
    """The session's turns before ``before_index``, oldest first, with what each policy
    needs: the chosen answer, and the answers of ``pane_ids`` (policy "own"), or of every
    pane still showing, those excluded left out (policy "all"). An answer counts when it
    is done or has text; a replaced one (regenerated since) never does. One query."""
    counts = "(r.status = %s OR r.text <> '') AND r.replaced = %s"
    if policy == ContextPolicy.ALL:
        joined = (
            f"LEFT JOIN {_q(_R)} r ON r.turn_id = t.id AND {counts} AND r.excluded = %s "  # noqa: S608
            f"AND r.pane_id IN (SELECT id FROM {_q(_P)} WHERE session_id = %s AND removed = %s) "
        )
        params: list[Any] = [Status.DONE, False, False, session_id, False]
    elif policy == ContextPolicy.CHOSEN:
        joined, params = f"LEFT JOIN {_q(_R)} r ON 1 = 0 ", []
    else:
        joined = (
            f"LEFT JOIN {_q(_R)} r ON r.turn_id = t.id AND {counts} "
            f"AND r.pane_id IN ({_in(pane_ids)}) "
        )
        params = [Status.DONE, False, *pane_ids]
    sql = (
        "SELECT t.id, t.prompt, t.images, c.text, c.status, r.pane_id, r.display_name, "  # noqa: S608
        f"r.text, t.media FROM {_q(_T)} t LEFT JOIN {_q(_R)} c ON c.id = t.chosen_id "
        f"{joined}LEFT JOIN {_q(_P)} p ON p.id = r.pane_id "
        f"WHERE t.session_id = %s AND t.{_q('index')} < %s "
        f"ORDER BY t.{_q('index')}, p.position"
    )
    turns: dict[int, EarlierTurn] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, session_id, before_index])
        for turn_id, prompt, images, chosen, chosen_status, pane_id, name, text, media in cursor:
            turn = turns.get(turn_id)
            if turn is None:
                counted = chosen is not None and (chosen_status == Status.DONE or chosen != "")
                turn = turns[turn_id] = EarlierTurn(
                    TurnText(prompt, _json(images) or [], _json(media) or []),
                    chosen if counted else None,
                )
            if pane_id is not None:
                turn.answers.append((pane_id, name, text))
    return list(turns.values())
