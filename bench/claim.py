"""What the worker's claim of a turn costs on an idle machine (no load, one process).

A follow-up turn of four echo panes with three earlier turns, on SQLite and a real
redis-server, as ``make run`` has them: ``runner.claim_responses`` (read the pending rows, beat
and try for the endpoint slots, claim, read the history, build the requests) timed N times
after a warm-up; the rows are put back to pending between runs. Prints p10 / p50 / p90 in
microseconds, and a JSON summary as the last line. The claim is on every Send's way to its
first token; bench/streams.py measures that whole way under load.

    .venv/bin/python bench/claim.py [--runs 400]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "playground"))

from scripts.services import start_redis  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="playground-claim-"))
    redis = start_redis(tmp / "redis")
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="playground.settings",
            DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
            REDIS_URL=redis.url,
            SECRET_KEY="bench-secret-" + "k" * 40,
            PLAYGROUND_VAULT_KEY="YmVuY2ggdmF1bHQga2V5LCBub3QgYSBzZWNyZXQuLi4=",
            PLAYGROUND_VAR_DIR=str(tmp),
            PLAYGROUND_LOCAL_MODEL_URL="",
            DEBUG="false",
        )
        import django

        django.setup()
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from helpers import make_turn

        from playground.models import Response, Status
        from playground.redis_sync import redis_client
        from playground.worker.runner import claim_responses
        from playground.worker.slots import release_sync

        call_command("migrate", verbosity=0)
        owner = User.objects.create_user("bench")
        panes = [("echo", {})] * 4
        turn = make_turn(owner, panes, "The first question")
        for number in range(3):
            Response.objects.filter(turn=turn).update(status=Status.DONE, text="answer " * 50)
            turn = make_turn(owner, panes, f"Follow-up {number}", session=turn.session)
        ids = list(Response.objects.filter(turn=turn).values_list("pk", flat=True))
        spent: list[float] = []
        for _ in range(args.runs + 50):
            Response.objects.filter(pk__in=ids).update(status=Status.PENDING)
            started = time.perf_counter_ns()
            jobs = claim_responses(turn.pk, ids)
            spent.append((time.perf_counter_ns() - started) / 1000)
            if len(jobs) != 4 or len(jobs[0].request.messages) != 7:
                raise RuntimeError("the claim did not build the follow-up's four requests")
            for job in jobs:
                assert job.model is not None
                release_sync(redis_client(), job.model.endpoint, job.response_id)
        spent = sorted(spent[50:])
        summary = {
            "runs": len(spent),
            "claim_us_p10": round(spent[len(spent) // 10]),
            "claim_us_p50": round(statistics.median(spent)),
            "claim_us_p90": round(spent[len(spent) * 9 // 10]),
        }
        print(
            f"claim_responses (follow-up, 4 panes, 3 earlier turns): p10 {summary['claim_us_p10']}"
            f" / p50 {summary['claim_us_p50']} / p90 {summary['claim_us_p90']} µs"
        )
        print(json.dumps(summary))
    finally:
        redis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
