"""The web process's CPU per Send, in-process: follow-ups of a two-pane comparison of a
priced remote model (no worker: each turn is marked done before the next Send), on SQLite,
with a site quota so that every Send reserves its worst case. Prints p50 and p90 in ms.

Run it in two trees, alternating, to compare commits on this noisy host:

    PYTHONPATH=. .venv/bin/python bench/send_cost.py [--sends 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=300)
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from scripts.services import start_redis

    tmp = tempfile.mkdtemp(prefix="send-cost-")
    redis = start_redis(tmp)
    os.environ.update(
        DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
        PLAYGROUND_VAR_DIR=tmp,
        SECRET_KEY="send-cost-" + "k" * 40,
        PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=",
        DEBUG="false",
        ALLOWED_HOSTS="testserver",
        PLAYGROUND_LOCAL_MODEL_URL="",
        DJANGO_SETTINGS_MODULE="playground.settings",
        OPENAI_API_KEY="sk-send-cost-000000000000",
        PLAYGROUND_FAIR_CONCURRENT_TURNS="1000",
        PLAYGROUND_FAIR_SENDS_PER_MINUTE="100000",
        REDIS_URL=redis.url,
    )
    try:
        import django

        django.setup()
        print(f"send p50 / p90 ms: {measure(opts.sends)}")
    finally:
        redis.stop()


def measure(sends: int) -> str:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from playground.models import Response

    call_command("migrate", verbosity=0)
    try:
        from playground.models import Quota

        Quota.objects.create(
            scope="site", requests_per_day=10**9, tokens_per_month=10**15, spend_per_month=10**7
        )
    except ImportError:  # a commit before quotas
        pass
    client = Client()
    client.force_login(User.objects.create_user("bench"))
    htmx = {"HX-Request": "true"}

    def form(prompt: str) -> dict[str, object]:
        model = "openai:gpt-4.1-mini"
        return {"prompt": prompt, "pane": ["0", "1"], "pane-0-model": model, "pane-1-model": model}

    first = client.post("/send/", form("first"), headers=htmx)
    url = first["HX-Redirect"]
    times = []
    for number in range(sends):
        Response.objects.update(status="done", input_tokens=10, output_tokens=10)
        started = time.perf_counter()
        answer = client.post(url + "send/", form(f"question {number}"), headers=htmx)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200 or b"errors" in answer.content:
            raise SystemExit(answer.content.decode()[:500])
    kept = sorted(times[sends // 6 :])  # the first ones warm caches up
    return f"{statistics.median(kept):.2f} / {kept[int(len(kept) * 0.9)]:.2f}"


if __name__ == "__main__":
    main()
