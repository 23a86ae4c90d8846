"""``make run``: the whole playground on this machine, with its embedded defaults.

Starts a redis-server on a free loopback port, the local model server (SmolLM2-135M through
llama.cpp), migrates the SQLite database, creates the first admin, then runs one Celery
worker and daphne on http://127.0.0.1:8000. Ctrl-C stops every process it started.

Redis keeps its data in var/redis (append-only file, written every second), so the queue and
the logs of streaming answers outlive a restart. The worker, Redis (on the same port) and the
local model server are started again when they die (scripts/supervisor.py: a pause that
grows, a line here, and no more than five restarts a minute); daphne dying stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.children import LOOPBACK, ChildError, describe_status, port_open, start  # noqa: E402
from scripts.local_model import start_local_model  # noqa: E402
from scripts.services import start_redis  # noqa: E402
from scripts.supervisor import GaveUp, Supervised  # noqa: E402

VAR = Path(os.environ.get("PLAYGROUND_VAR_DIR", ROOT / "var"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-local-model", action="store_true")
    parser.add_argument("--worker-concurrency", type=int, default=64)
    opts = parser.parse_args()

    VAR.mkdir(parents=True, exist_ok=True)
    logs = VAR / "logs"
    logs.mkdir(exist_ok=True)
    python = sys.executable
    env = dict(os.environ, PLAYGROUND_VAR_DIR=str(VAR), PYTHONUNBUFFERED="1")

    # Ctrl-C (also when started from a script, where SIGINT may arrive ignored) and SIGTERM
    # both end in the one clean-up: leaving the ExitStack stops every process it holds, the
    # last started first.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    supervised: list[Supervised] = []
    local_model: Supervised | None = None
    with contextlib.ExitStack() as running:
        try:
            if "REDIS_URL" not in os.environ:
                # Persisted (append-only, every second) under var/redis: queued turns and
                # the logs of streaming answers outlive a restart of Redis or of make run.
                first_redis = start_redis(VAR / "redis", persist=True)
                redis = Supervised(
                    "redis-server",
                    lambda: start_redis(VAR / "redis", port=first_redis.port, persist=True),
                )
                supervised.append(running.enter_context(redis.adopt(first_redis)))
                env["REDIS_URL"] = first_redis.url
            print(f"redis        {env['REDIS_URL']}")
            if opts.no_local_model:
                env.setdefault("PLAYGROUND_LOCAL_MODEL_URL", "")
            elif "PLAYGROUND_LOCAL_MODEL_URL" not in os.environ:
                try:
                    port = None if port_open(8081) else 8081
                    first = start_local_model(port, log_dir=logs)
                    local_model = Supervised(
                        "local model server",
                        lambda: start_local_model(first.port, log_dir=logs),
                    )
                    supervised.append(running.enter_context(local_model.adopt(first)))
                    env["PLAYGROUND_LOCAL_MODEL_URL"] = first.url
                    print(f"local model  {first.url} (SmolLM2-135M-Instruct, llama.cpp)")
                except ChildError as error:
                    env["PLAYGROUND_LOCAL_MODEL_URL"] = ""
                    print(f"local model  not started: {error}")
            manage = [python, str(ROOT / "manage.py")]
            subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
            subprocess.run([*manage, "ensure_admin"], env=env, check=True)
            worker_argv = [
                python,
                "-m",
                "celery",
                "-A",
                "playground",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(opts.worker_concurrency),
                "--prefetch-multiplier",
                "1",
                "-l",
                "info",
                "--without-mingle",
                "--without-gossip",
            ]
            # The worker is started again when it dies (its panes are ended "interrupted"
            # with what they had shown, by the watchdog); daphne dying stops everything.
            worker = Supervised(
                "celery worker",
                lambda: start(
                    "celery worker", worker_argv, log=logs / "worker.log", cwd=ROOT, env=env
                ),
                # Its warm shutdown lets panes finish for PLAYGROUND_SHUTDOWN_GRACE_SECONDS,
                # then ends the rest "interrupted", settled; SIGKILL only after this.
                stop_timeout=60,
            )
            supervised.append(running.enter_context(worker))
            # daphne's log is this terminal, as before.
            web = start(
                "daphne",
                [
                    python,
                    "-m",
                    "daphne",
                    "-b",
                    opts.host,
                    "-p",
                    str(opts.port),
                    "playground.asgi:application",
                ],
                log=None,
                cwd=ROOT,
                env=env,
            )
            running.enter_context(web)
            web.wait_for_port(opts.port, host=_reachable(opts.host))
            print()
            print(f"  The playground is at http://{opts.host}:{opts.port}/")
            print(f"  Sign in as admin; the password is in {VAR / 'admin_password'}")
            print(f"  Worker log: {logs / 'worker.log'}.  Ctrl-C stops everything.")
            print()
            while web.alive():
                for child in list(supervised):
                    try:
                        child.check()
                    except GaveUp as error:
                        if child is not local_model:
                            raise
                        # Without the local model the rest still works; its panes say so.
                        print(f"{error}\n  The playground goes on without it.")
                        supervised.remove(child)
                time.sleep(0.5)
            print(f"daphne {describe_status(web.exit_status() or 0)}; stopping.")
            return 1
        except ChildError as error:
            print(f"{error}; stopping.")
            return 1
        except KeyboardInterrupt:
            print("\nStopping…")
            return 0


def _reachable(host: str) -> str:
    """Where to look for a server that listens on ``host``: a wildcard means this machine."""
    return {"0.0.0.0": LOOPBACK, "": LOOPBACK, "::": "::1"}.get(host, host)


if __name__ == "__main__":
    sys.exit(main())
