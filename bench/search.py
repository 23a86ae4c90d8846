"""Search over 10,000 sessions: the sidebar's search view, timed in-process on SQLite (FTS5)
and on PostgreSQL (stored tsvectors, GIN indexes), on one person's generated conversations.

    PYTHONPATH=. .venv/bin/python bench/search.py [--sessions 10000] [--queries 300]
                                                  [--database sqlite|postgres|both]

Each database gets one person with ``--sessions`` sessions (2 to 4 turns of 2 or 3 panes,
answers of 150 to 450 words, prompts of 10 to 40) and a second person with a tenth as many
(made in turns, so their rows interleave),
all drawn from a generated vocabulary of 20,000 words whose frequencies follow Zipf's law
(so a few words are in nearly every answer and most in very few). Then the search view
(``GET /sessions/search/?q=``, through Django's test client and every middleware) answers
``--queries`` queries: common words (among the 100 most frequent), rare ones (ranks 2,000
to 20,000), one of each, and two words that follow each other in an answer, quoted.
Prints p50 and p99 in milliseconds per kind, for the words (all but the phrases) and for
all. PostgreSQL is started by scripts/services.py on a free port, and both databases live
in a temporary directory removed at the end (about 5 minutes in all).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = 20_000
BATCH = 500
SYLLABLES = [
    c + v
    for c in ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
    for v in ("a", "e", "i", "o", "u", "ai", "ou")
]


def vocabulary(rng: random.Random) -> list[str]:
    """Distinct made-up words, shortest first (frequent words are short, as in English)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        length = 1 + min(4, len(words) // 400 + rng.randint(0, 1))
        word = "".join(rng.choice(SYLLABLES) for _ in range(length))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Text:
    """Sentences drawn from the vocabulary with Zipf's law (s = 1.07)."""

    def __init__(self, seed: int = 14) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        weights = [1 / (rank**1.07) for rank in range(1, VOCABULARY + 1)]
        total = 0.0
        self.cumulative = []
        for weight in weights:
            total += weight
            self.cumulative.append(total)

    def words_of(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def sentence_text(self, count: int) -> str:
        words = self.words_of(count)
        out, start = [], 0
        while start < len(words):
            end = start + self.rng.randint(6, 18)
            out.append(" ".join(words[start:end]).capitalize() + ".")
            start = end
        return " ".join(out)


# --------------------------------------------------------------------------- the child


def fill(owner: Any, sessions: int, text: Text) -> None:
    """``sessions`` sessions of ``owner``, written in batches with bulk_create."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from playground.models import Pane, Response, Session, Status, Turn

    models = [("echo", "Echo"), ("local:smollm2", "Local · SmolLM2-135M")]
    models += [(f"openai:gpt-{n}", f"OpenAI · GPT-{n}") for n in ("4.1", "4.1-mini", "4o")]
    now = timezone.now()
    rng = text.rng
    batch = BATCH
    for start in range(0, sessions, batch):
        with transaction.atomic():
            rows = [
                Session(owner=owner, title=" ".join(text.words_of(rng.randint(3, 8))).capitalize())
                for _ in range(min(batch, sessions - start))
            ]
            rows = Session.objects.bulk_create(rows)
            panes: list[Pane] = []
            turns: list[Turn] = []
            for session in rows:
                picked = rng.sample(models, rng.randint(2, 3))
                panes += [
                    Pane(session=session, position=i, model_key=key)
                    for i, (key, _) in enumerate(picked)
                ]
                turns += [
                    Turn(session=session, index=i, prompt=text.sentence_text(rng.randint(10, 40)))
                    for i in range(rng.randint(2, 4))
                ]
            panes = Pane.objects.bulk_create(panes)
            turns = Turn.objects.bulk_create(turns)
            names = dict(models)
            by_session: dict[int, list[Pane]] = {}
            for pane in panes:
                by_session.setdefault(pane.session_id, []).append(pane)
            Response.objects.bulk_create(
                [
                    Response(
                        turn=turn,
                        pane=pane,
                        model_key=pane.model_key,
                        display_name=names[pane.model_key],
                        status=Status.DONE,
                        text=text.sentence_text(rng.randint(150, 450)),
                    )
                    for turn in turns
                    for pane in by_session[turn.session_id]
                ],
                batch_size=1000,
            )
            # Spread over the last year, as a year of use would leave them.
            ages = [(s.pk, now - timedelta(minutes=rng.randint(0, 525_600))) for s in rows]
            with connection.cursor() as cursor:
                cursor.executemany(
                    "UPDATE playground_session SET updated_at = %s WHERE id = %s",
                    [(when, pk) for pk, when in ages],
                )


def queries(text: Text, count: int, answers: list[str]) -> Iterator[tuple[str, str]]:
    """Common words (among the 100 most frequent), rare ones (ranks 2,000 to 20,000), a
    frequent and a rare word together, and two words that follow each other in an answer,
    quoted (a phrase someone remembers)."""
    rng = random.Random(7)
    common, rare = text.words[:100], text.words[2000:]
    kinds = ["common word", "rare word", "two words", "phrase"]
    for number in range(count):
        kind = kinds[number % len(kinds)]
        if kind == "common word":
            yield kind, rng.choice(common)
        elif kind == "rare word":
            yield kind, rng.choice(rare)
        elif kind == "two words":
            yield kind, f"{rng.choice(text.words[:1000])} {rng.choice(rare)}"
        else:
            words = rng.choice(answers).rstrip(".").lower().replace(".", "").split()
            at = rng.randrange(len(words) - 1)
            yield kind, f'"{words[at]} {words[at + 1]}"'


def child(opts: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from playground.models import Response

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    text = Text()
    owner = User.objects.create_user("bench")
    someone = User.objects.create_user("someone-else")
    # Taking turns, as two people using one site do: their rows interleave.
    for start in range(0, opts.sessions, BATCH):
        fill(owner, min(BATCH, opts.sessions - start), text)
        fill(someone, min(BATCH, opts.sessions - start) // 10, text)
        print(f"  {start + BATCH} sessions", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO playground_search (playground_search) VALUES ('optimize')")
            cursor.execute("ANALYZE")
    filled = time.perf_counter() - started
    client = Client()
    client.force_login(owner)
    headers = {"HX-Request": "true"}
    answers = list(
        Response.objects.filter(turn__session__owner=owner)
        .order_by("?")
        .values_list("text", flat=True)[: opts.queries]
    )
    asked = list(queries(text, opts.queries, answers))
    for _, q in asked[:20]:  # warm caches up
        client.get("/sessions/search/", {"q": q}, headers=headers)
    times: dict[str, list[float]] = {}
    found: dict[str, list[int]] = {}
    cpu = os.times()
    wall = time.monotonic()
    for kind, q in asked:
        t0 = time.perf_counter()
        answer = client.get("/sessions/search/", {"q": q}, headers=headers)
        elapsed = (time.perf_counter() - t0) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"{q!r}: {answer.status_code} {answer.content[:300]!r}")
        times.setdefault(kind, []).append(elapsed)
        found.setdefault(kind, []).append(answer.content.count(b'class="search-result"'))
    # The host is shared: how busy it was while the queries ran, besides this process.
    load = os.getloadavg()[0]
    used = (os.times().user + os.times().system - cpu.user - cpu.system) / (time.monotonic() - wall)
    print(
        json.dumps(
            {
                "load": round(load, 2),
                "own_cpu": round(used, 2),
                "database": connection.vendor,
                "fill_s": round(filled, 1),
                "times": times,
                "found": {k: statistics.mean(v) for k, v in found.items()},
            }
        )
    )


# --------------------------------------------------------------------------- the parent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run(database: str, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from scripts.services import start_postgres

    env = dict(os.environ)
    env.update(
        PLAYGROUND_VAR_DIR=str(tmp),
        SECRET_KEY="search-bench-" + "k" * 40,
        PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=",
        DEBUG="false",
        ALLOWED_HOSTS="testserver",
        PLAYGROUND_LOCAL_MODEL_URL="",
        DJANGO_SETTINGS_MODULE="playground.settings",
        PYTHONPATH=str(ROOT),
    )
    postgres = None
    if database == "postgres":
        postgres = start_postgres(tmp / "pg")
        env["DATABASE_URL"] = postgres.url
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp}/search.sqlite3"
    argv = [sys.executable, __file__, "--child", "--sessions", str(opts.sessions)]
    argv += ["--queries", str(opts.queries)]
    try:
        out = subprocess.run(argv, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    finally:
        if postgres is not None:
            postgres.stop()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def report(result: dict[str, Any]) -> None:
    times: dict[str, list[float]] = result["times"]
    every = [t for values in times.values() for t in values]
    words = [t for kind, values in times.items() if kind != "phrase" for t in values]
    print(
        f"{result['database']}: filled in {result['fill_s']} s; load average while measuring"
        f" {result['load']} (this process {result['own_cpu']} of a core)"
    )
    print(f"  {'queries':<14}{'n':>5}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'results':>9}")
    for kind, values in [*times.items(), ("words", words), ("all", every)]:
        shown = result["found"].get(kind)
        print(
            f"  {kind:<14}{len(values):>5}{statistics.median(values):>9.1f}"
            f"{percentile(values, 0.99):>9.1f}{max(values):>9.1f}"
            f"{'' if shown is None else f'{shown:.1f}':>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts)
        return
    databases = ["sqlite", "postgres"] if opts.database == "both" else [opts.database]
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        for database in databases:
            report(run(database, opts, Path(tmp)))


if __name__ == "__main__":
    main()
