"""``make run``: the whole playground on this machine, with its embedded defaults.

Starts a redis-server on a free loopback port, the local model server (SmolLM2-135M through
llama.cpp), migrates the SQLite database, creates the first admin, then runs one Celery
worker and daphne on http://127.0.0.1:8000. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.local_model import LocalModelUnavailable, start_local_model  # noqa: E402
from scripts.services import Service, ServiceError, start_redis  # noqa: E402

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
    services: list[Service] = []
    processes: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ, PLAYGROUND_VAR_DIR=str(VAR), PYTHONUNBUFFERED="1")

    def stop_all(*_: object) -> None:
        for proc in reversed(processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(processes):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for service in reversed(services):
            service.stop()

    # Ctrl-C (also when started from a script, where SIGINT may arrive ignored) and SIGTERM
    # both end in the one clean-up below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if "REDIS_URL" not in os.environ:
            redis = start_redis(VAR / "redis")
            services.append(redis)
            env["REDIS_URL"] = redis.url
        print(f"redis        {env['REDIS_URL']}")
        if opts.no_local_model:
            env.setdefault("PLAYGROUND_LOCAL_MODEL_URL", "")
        elif "PLAYGROUND_LOCAL_MODEL_URL" not in os.environ:
            try:
                model = start_local_model(8081 if _free(8081) else None, log_dir=logs)
                services.append(model)
                env["PLAYGROUND_LOCAL_MODEL_URL"] = model.url
                print(f"local model  {model.url} (SmolLM2-135M-Instruct, llama.cpp)")
            except (LocalModelUnavailable, ServiceError) as error:
                env["PLAYGROUND_LOCAL_MODEL_URL"] = ""
                print(f"local model  not started: {error}")
        manage = [python, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "ensure_admin"], env=env, check=True)
        worker_log = open(logs / "worker.log", "ab")  # noqa: SIM115 - lives as long as the worker
        processes.append(
            subprocess.Popen(
                [
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
                ],
                cwd=ROOT,
                env=env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
        )
        processes.append(
            subprocess.Popen(
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
                cwd=ROOT,
                env=env,
            )
        )
        time.sleep(1.5)
        print()
        print(f"  The playground is at http://{opts.host}:{opts.port}/")
        print(f"  Sign in as admin; the password is in {VAR / 'admin_password'}")
        print(f"  Worker log: {logs / 'worker.log'}.  Ctrl-C stops everything.")
        print()
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        failed = next(p for p in processes if p.poll() is not None)
        print(f"{failed.args[2] if len(failed.args) > 2 else failed.args} exited; stopping.")
        return 1
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        stop_all()


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


if __name__ == "__main__":
    sys.exit(main())
