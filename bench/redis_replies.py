"""What parsing Redis replies costs, with redis-py's own parsers and with hiredis (C).

The worker writes every pane's deltas in one pipeline per tick (an XADD per pane), and each
websocket follower in daphne reads its panes' logs with XREAD. Both parse every reply in
Python unless hiredis is installed. This script does the two the way they happen under
load, against its own redis-server: a pipeline of 200 XADDs (one tick at 200 streams) and
an XREAD of 4 logs of 50 entries (a follower catching up), with each parser in turn,
run after run. Prints CPU per tick and per XREAD; the last line is a JSON summary.

    .venv/bin/python bench/redis_replies.py [--runs 2] [--repeat 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser, _AsyncRESP3Parser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import start_redis  # noqa: E402

PARSERS = {
    "redis-py RESP3": (_AsyncRESP3Parser, 3),
    "redis-py RESP2": (_AsyncRESP2Parser, 2),
    "hiredis RESP3": (_AsyncHiredisParser, 3),
}
# A delta entry as the publisher writes it (playground/worker/publisher.py).
ENTRY = {"k": "d", "t": " 12:345678901234 13:345678901299", "r": "", "n": 7, "ms": 1234}


async def _measure(url: str, parser: type, protocol: int, repeat: int) -> dict[str, float]:
    pool = aioredis.ConnectionPool.from_url(url, parser_class=parser, protocol=protocol)
    redis = aioredis.Redis(connection_pool=pool)
    try:
        await redis.flushdb()
        cpu = time.process_time()
        for tick in range(repeat):
            async with redis.pipeline(transaction=False) as pipe:
                for pane in range(200):
                    pipe.xadd(f"log:{pane}", ENTRY, id=f"{tick + 1}-1")  # type: ignore[arg-type]
                await pipe.execute()
        ticks = time.process_time() - cpu
        cpu = time.process_time()
        for _ in range(repeat):
            await redis.xread({f"log:{pane}": "0-0" for pane in range(4)}, count=50)
        reads = time.process_time() - cpu
    finally:
        await redis.aclose()
    return {
        "xadd_pipeline_200_ms": round(ticks / repeat * 1000, 2),
        "xread_4x50_ms": round(reads / repeat * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in PARSERS}
    with tempfile.TemporaryDirectory(prefix="playground-bench-") as tmp:
        redis = start_redis(Path(tmp) / "redis")
        try:
            for run in range(1, args.runs + 1):
                for name, (parser_class, protocol) in PARSERS.items():
                    numbers = asyncio.run(_measure(redis.url, parser_class, protocol, args.repeat))
                    results[name].append(numbers)
                    print(f"run {run}  {name:15s} pipeline of 200 XADD "
                          f"{numbers['xadd_pipeline_200_ms']:5.2f} ms CPU   XREAD 4 x 50 entries "
                          f"{numbers['xread_4x50_ms']:5.2f} ms CPU", flush=True)  # fmt: skip
        finally:
            redis.stop()
    summary = {
        name: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
        for name, runs in results.items()
    }
    print(json.dumps({"repeat": args.repeat, "medians": summary, "runs": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
