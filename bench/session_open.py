"""Opening a big session: GET /s/<id>/ of a session of 100 turns × 4 panes, and both of
its exports, in-process with Django's test client on SQLite (its own redis-server, as the
page reads the logs of streaming panes). Answers of a few hundred words of Markdown (lists,
code, a table now and then), some with reasoning and tool calls. Prints p50 / p99 in ms
over warm loads (the first loads, which warm caches and the database, are not counted),
wall time and this process's CPU time, and the first load's (cold: nothing rendered yet).

    PYTHONPATH=. .venv/bin/python bench/session_open.py [--loads 30] [--turns 100]
        [--panes 4] [--profile]

``--profile`` also prints where one warm page load spends its time (cProfile, by
cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MODELS = ("openai:gpt-5", "anthropic:claude-sonnet-4-5", "deepseek:deepseek-reasoner", "echo")
_TEXT = (
    "model answer token stream latency context window prompt cache reasoning tool call "
    "function argument result json schema python request response server client worker "
    "queue redis stream session pane turn compare measure benchmark the a of to in and "
    "is that it for on with as this by be are from at or an which"
)
WORDS = _TEXT.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--panes", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from scripts.services import start_redis

    tmp = tempfile.mkdtemp(prefix="session-open-")
    redis = start_redis(tmp)
    os.environ.update(
        DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
        PLAYGROUND_VAR_DIR=tmp,
        SECRET_KEY="session-open-" + "k" * 40,
        PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=",
        DEBUG="false",
        ALLOWED_HOSTS="testserver",
        PLAYGROUND_LOCAL_MODEL_URL="",
        DJANGO_SETTINGS_MODULE="playground.settings",
        REDIS_URL=redis.url,
    )
    try:
        import playground.asgi  # noqa: F401 - the web process as daphne loads it (gc.freeze)

        run(opts)
    finally:
        redis.stop()


def answer(rng: random.Random, words: int) -> str:
    """A few hundred words of Markdown, as models write them."""

    def sentence() -> str:
        picked = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        if rng.random() < 0.3:
            picked[rng.randrange(len(picked))] = f"`{rng.choice(WORDS)}()`"
        if rng.random() < 0.2:
            picked[rng.randrange(len(picked))] = f"**{rng.choice(WORDS)}**"
        return " ".join(picked).capitalize() + "."

    parts = [f"## {sentence()}"]
    count = 0
    while count < words:
        roll = rng.random()
        if roll < 0.15:
            block = "```python\n" + "\n".join(
                f"def {rng.choice(WORDS)}_{i}(x):\n    return x * {i}  # {rng.choice(WORDS)}"
                for i in range(rng.randint(2, 5))
            )
            block += "\n```"
        elif roll < 0.3:
            block = "\n".join(f"- {sentence()}" for _ in range(rng.randint(3, 6)))
        elif roll < 0.35:
            block = "| name | value |\n| --- | ---: |\n" + "\n".join(
                f"| {rng.choice(WORDS)} | {rng.randint(1, 999)} |" for _ in range(4)
            )
        else:
            block = " ".join(sentence() for _ in range(rng.randint(3, 6)))
        parts.append(block)
        count += len(block.split())
    return "\n\n".join(parts)


def build_session(owner: Any, turns: int, panes: int) -> Any:
    """A finished session of ``turns`` × ``panes`` answers, written in bulk."""
    from django.utils import timezone

    from playground.catalog import catalog
    from playground.models import Pane, Response, Session, Turn

    rng = random.Random(14)
    models = catalog()
    session = Session.objects.create(owner=owner, title="A long comparison of four models")
    pane_rows = Pane.objects.bulk_create(
        Pane(
            session=session,
            position=i,
            model_key=MODELS[i % len(MODELS)],
            params={"temperature": round(0.2 + 0.2 * i, 1), "max_tokens": 1024},
        )
        for i in range(panes)
    )
    tools = [{"name": "get_weather", "description": "Weather of a city", "parameters": {}}]
    turn_rows = Turn.objects.bulk_create(
        Turn(
            session=session,
            index=i,
            prompt=f"Question {i + 1}: " + " ".join(rng.choice(WORDS) for _ in range(30)),
            tools=tools if i % 10 == 0 else [],
        )
        for i in range(turns)
    )
    now = timezone.now()
    rows = []
    for turn in turn_rows:
        for pane in pane_rows:
            n = turn.index * panes + pane.position
            key = pane.model_key
            model = models.get(key)
            rows.append(
                Response(
                    turn=turn,
                    pane=pane,
                    model_key=key,
                    display_name=model.display_name if model else key,
                    params=pane.params,
                    status="done",
                    text=answer(rng, rng.randint(200, 400)),
                    reasoning=answer(rng, 80) if n % 3 == 0 else "",
                    tool_calls=[
                        {"id": f"call_{n}", "name": "get_weather", "arguments": '{"city":"Oslo"}'}
                    ]
                    if n % 5 == 0
                    else [],
                    finish_reason="tool_calls" if n % 5 == 0 else "stop",
                    input_tokens=500 + n,
                    output_tokens=400 + n % 97,
                    reasoning_tokens=120 if n % 3 == 0 else None,
                    usage_estimated=n % 7 == 0,
                    ttft_ms=300 + n % 200,
                    waited_ms=0 if n % 4 else 1500,
                    total_ms=4000 + n % 1000,
                    tokens_per_s=95.5,
                    cost=Decimal("0.00412") + Decimal(n) / 10**6,
                    cost_currency="USD",
                    key_scope="team",
                    key_label="team key 'research'",
                    started_at=now - timedelta(seconds=5),
                    finished_at=now,
                )
            )
    Response.objects.bulk_create(rows, batch_size=200)
    return session


def timed(get: Callable[[], Any], loads: int, warm: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU milliseconds of ``loads`` calls after ``warm`` uncounted ones, sorted,
    and the size of the answer. CPU time is this process's: on a shared host, wall time's
    tail is mostly other processes' turns on the cores."""
    size = 0
    for _ in range(warm):
        size = len(get().content)
    wall, cpu = [], []
    for _ in range(loads):
        started, started_cpu = time.perf_counter(), time.process_time()
        page = get()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        if page.status_code != 200:
            raise SystemExit(f"status {page.status_code}: {page.content[:300]!r}")
    return sorted(wall), sorted(cpu), size


def p50_p99(times: list[float]) -> str:
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"{statistics.median(times):6.1f} / {p99:6.1f}"


def run(opts: argparse.Namespace) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user("bench")
    started = time.perf_counter()
    session = build_session(owner, opts.turns, opts.panes)
    built = time.perf_counter() - started
    print(f"session of {opts.turns} turns × {opts.panes} panes written in {built:.1f} s")
    client = Client()
    client.force_login(owner)
    base = f"/s/{session.pk}/"
    started = time.perf_counter()
    client.get(base)
    cold = (time.perf_counter() - started) * 1000
    print(f"GET /s/<id>/ first load (no answer's HTML kept yet): {cold:.0f} ms")
    for name, url in (
        ("GET /s/<id>/", base),
        ("GET export.md", base + "export.md"),
        ("GET export.json", base + "export.json"),
    ):
        if client.get(url).status_code == 404:  # a commit before exports
            print(f"{name:<16} (not in this tree)")
            continue
        wall, cpu, size = timed(lambda url=url: client.get(url), opts.loads, opts.warm)
        print(
            f"{name:<16} wall p50 / p99 {p50_p99(wall)} ms   CPU p50 / p99 {p50_p99(cpu)} ms"
            f"   {size / 1024:6.0f} KiB"
        )
    if opts.profile:
        profile = cProfile.Profile()
        profile.runcall(client.get, base)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
