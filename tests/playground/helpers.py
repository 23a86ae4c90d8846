"""Plain helpers the playground tests share: rows as Send would save them, the Send form,
OpenAI-style SSE bodies, reading a pane's log, and the database away."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from django.db import connection, connections

from playground import vault
from playground.catalog import catalog
from playground.live import response_log
from playground.models import CustomEndpoint, Pane, Response, Session, Status, Turn
from playground.own_models import model_key
from scripts.children import free_port

PaneDef = tuple[str, dict[str, Any]]


def make_turn(
    owner: Any,
    panes: Sequence[PaneDef],
    prompt: str = "Hello there",
    *,
    session: Session | None = None,
    status: str = Status.PENDING,
    system_prompt: str = "",
) -> Turn:
    """A turn with one response per pane (position = index), as the Send view saves it."""
    if session is None:
        session = Session.objects.create(owner=owner, title=prompt[:80])
    last = session.turns.order_by("-index").first()
    turn = Turn.objects.create(
        session=session,
        index=0 if last is None else last.index + 1,
        prompt=prompt,
        system_prompt=system_prompt,
    )
    for position, (key, params) in enumerate(panes):
        pane, _ = Pane.objects.update_or_create(
            session=session, position=position, defaults={"model_key": key, "params": params}
        )
        model = catalog().get(key)
        Response.objects.create(
            turn=turn,
            pane=pane,
            model_key=key,
            display_name=model.display_name if model else key,
            params=params,
            status=status,
        )
    return turn


def make_endpoint(
    owner: Any,
    name: str = "My vLLM",
    base_url: str = "http://vllm.internal:8000/v1",
    key: str = "",
    model_ids: Sequence[str] = ("meta-llama/Llama-3.1-8B:free",),
) -> CustomEndpoint:
    """An endpoint as the Your endpoints page saves it (its key in the vault)."""
    return CustomEndpoint.objects.create(
        owner=owner,
        name=name,
        base_url=base_url,
        key_ciphertext=vault.encrypt(key) if key else "",
        key_hint=vault.hint(key) if key else "",
        model_ids=list(model_ids),
    )


def endpoint_key(endpoint: CustomEndpoint, index: int = 0) -> str:
    """The Model picker's key of one of the endpoint's models."""
    return model_key(endpoint.pk, endpoint.model_ids[index])


def responses_of(turn: Turn) -> list[Response]:
    return list(turn.responses.select_related("pane", "turn").order_by("pane__position"))


def send_form(
    prompt: str = "Hello there",
    panes: Sequence[PaneDef] = (("echo", {}),),
    system_prompt: str = "",
) -> dict[str, Any]:
    """The fields the page's Send form posts."""
    data: dict[str, Any] = {
        "prompt": prompt,
        "system_prompt": system_prompt,
        "pane": [str(position) for position in range(len(panes))],
    }
    for position, (key, params) in enumerate(panes):
        data[f"pane-{position}-model"] = key
        for name, value in params.items():
            data[f"pane-{position}-p-{name}"] = str(value)
    return data


def sse_chunks(pieces: Sequence[str], finish: str = "stop", usage: bool = False) -> list[bytes]:
    """An OpenAI-compatible stream (as llama.cpp's server sends it) in SSE frames."""

    def frame(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    frames = [frame({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    frames += [
        frame({"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
        for p in pieces
    ]
    frames.append(frame({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
    if usage:
        frames.append(frame({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def decoded(entries: list[tuple[Any, dict[Any, Any]]]) -> list[tuple[str, dict[str, str]]]:
    """XRANGE output with bytes turned into str."""
    return [(response_log.text(i), response_log.decoded(f)) for i, f in entries]


def article(page: str, response_id: int) -> str:
    """The <article> of one response in a page or fragment (empty when absent)."""

    match = re.search(
        rf'<article [^>]*\bid="response-{response_id}".*?</article>', page, flags=re.DOTALL
    )
    return match.group(0) if match else ""


async def run_turn(turn_id: int) -> None:
    """Claim and stream a turn on the test's event loop, as the Celery task does on the
    worker's (its claim on a thread of the loop's executor)."""
    from asgiref.sync import sync_to_async

    from playground.worker.runner import claim_responses, stream_responses

    await stream_responses(await sync_to_async(claim_responses, thread_sensitive=False)(turn_id))


class Outage:
    """Redis as the publisher meets it in a restart: ``away`` (nothing written, a
    connection error), ``answer lost`` (written, then a connection error), or None."""

    def __init__(self, client: Any) -> None:
        self.mode: str | None = None
        real = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real(*args, **kwargs)
            execute = pipe.execute

            async def through(*a: Any, **k: Any) -> Any:
                if self.mode == "away":
                    raise redis.ConnectionError("Connection refused.")
                results = await execute(*a, **k)
                if self.mode == "answer lost":
                    raise redis.ConnectionError("Connection closed by server.")
                return results

            pipe.execute = through
            return pipe

        client.pipeline = pipeline


@contextlib.contextmanager
def database_away() -> Iterator[None]:
    """The run's database stops answering, for real, until the block ends: PostgreSQL as a
    server that is down (the connection settings point at a loopback port where nothing
    listens: psycopg's own "connection refused"), SQLite locked by another connection for
    longer than its timeout. New connections only: this thread's are closed first, and
    other threads must not keep one (the consumers' and the runner's do not). Needs a
    transactional test (no atomic block of the test around it)."""
    conf = connection.settings_dict
    connections.close_all()
    if connection.vendor == "postgresql":
        port = conf["PORT"]
        conf["PORT"] = str(free_port())
        try:
            yield
        finally:
            connections.close_all()
            conf["PORT"] = port
        return
    options = conf.setdefault("OPTIONS", {})
    timeout = options.get("timeout")
    options["timeout"] = 0.2
    locker = sqlite3.connect(conf["NAME"], timeout=5, isolation_level=None)
    try:
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("CREATE TABLE database_away_lock (x)")  # a write takes the lock
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        connections.close_all()
        if timeout is None:
            options.pop("timeout", None)
        else:
            options["timeout"] = timeout
