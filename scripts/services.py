"""Start and stop real servers (redis-server, PostgreSQL) on free loopback ports.

Standard library only, so that it runs before anything else is installed. The servers are
child processes of scripts/children.py. ``make test`` runs the suite inside ``run``;
``make run`` and the benchmarks call ``start_redis``:

    python scripts/services.py run -- daphne playground.asgi:application
    python scripts/services.py run --no-postgres -- pytest -q

``run`` starts the servers in a temporary directory, hands their URLs to the command as
REDIS_URL, DATABASE_URL and TEST_DATABASE_URL, waits for the command, stops the servers
(also on Ctrl-C and SIGTERM) and exits with the command's exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python scripts/services.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.children import LOOPBACK, Child, ChildError, port_open, start, start_on_free_port  # noqa: E402

__all__ = ["start_postgres", "start_postgres_again", "start_redis", "main"]

PG_DATABASE = "playground"
PG_USER = "postgres"


# --------------------------------------------------------------------------- redis


def redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING on host:port (raw RESP, no client library)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"+PONG")


def start_redis(
    workdir: str | os.PathLike[str],
    *,
    port: int | None = None,
    timeout: float = 20.0,
    attempts: int = 3,
    persist: bool = False,
) -> Child:
    """Run ``redis-server`` (from PATH) on a free loopback port (``port``: that one).

    ``persist``: keep the data in ``workdir`` as an append-only file written every second
    (``make run``: a restart loses at most the last second); otherwise nothing is kept (the
    tests' and benchmarks' throw-away servers)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise ChildError("redis-server is not on PATH (Debian: apt-get install redis-server)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    def launch(chosen: int) -> Child:
        argv = [
            exe,
            "--port", str(chosen),
            "--bind", LOOPBACK,
            "--save", "",
            *(
                ("--appendonly", "yes", "--appendfsync", "everysec")
                if persist
                else ("--appendonly", "no")
            ),
            "--dir", str(workdir),
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        redis = start(
            "redis-server",
            argv,
            log=workdir / f"redis-{chosen}.log",
            port=chosen,
            url=f"redis://{LOOPBACK}:{chosen}/0",
        )
        return redis.wait_until(
            functools.partial(redis_ping, LOOPBACK, chosen), timeout=timeout, what="PING"
        )

    return launch(port) if port is not None else start_on_free_port(launch, attempts=attempts)


# --------------------------------------------------------------------------- postgres


def find_pg_bindir() -> Path:
    """The directory holding initdb and postgres (PostgreSQL 15 preferred)."""
    candidates: list[str] = []
    env_dir = os.environ.get("PG_BINDIR")
    if env_dir:
        candidates.append(env_dir)
    candidates.append("/usr/lib/postgresql/15/bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(out)

    def version_key(path: str) -> int:
        with contextlib.suppress(ValueError):
            return int(Path(path).parent.name)
        return 0

    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "postgres").is_file():
            return path
    raise ChildError(
        "PostgreSQL server binaries not found (looked in $PG_BINDIR, "
        "/usr/lib/postgresql/*/bin, pg_config --bindir); Debian: apt-get install postgresql"
    )


def _run_checked(argv: Sequence[str], *, user: str | None, what: str, timeout: float) -> None:
    kwargs: dict[str, object] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd="/",
        **kwargs,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        raise ChildError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _pg_base_dir(workdir: Path, run_as: str | None) -> tuple[Path, list[Callable[[], object]]]:
    """A directory for the cluster that the server's user can write.

    Normally ``workdir/postgres``. When running as root, the server runs as the
    ``postgres`` user, which may not be able to reach a private workdir (mkdtemp and
    pytest's tmp_path are mode 0700); then a private directory under the system temp
    dir is used instead and removed when the server stops.
    """
    base = workdir / "postgres"
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    if run_as is None:
        return base, []
    entry = pwd.getpwnam(run_as)
    os.chown(base, entry.pw_uid, entry.pw_gid)
    probe = subprocess.run(
        ["test", "-w", str(base), "-a", "-x", str(base)],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        check=False,
        cwd="/",
    )
    if probe.returncode == 0:
        return base, []
    shutil.rmtree(base, ignore_errors=True)
    private = Path(tempfile.mkdtemp(prefix="playground-pg-"))
    os.chown(private, entry.pw_uid, entry.pw_gid)
    link = workdir / "postgres"
    with contextlib.suppress(OSError):  # leave a pointer for whoever looks in workdir
        link.symlink_to(private)

    def cleanup() -> None:
        shutil.rmtree(private, ignore_errors=True)
        if link.is_symlink():
            link.unlink()

    return private, [cleanup]


def pg_ready(bindir: Path, port: int, timeout: float = 2.0) -> bool:
    pg_isready = bindir / "pg_isready"
    if not pg_isready.exists():
        found = shutil.which("pg_isready")
        if found is None:
            return port_open(port)
        pg_isready = Path(found)
    result = subprocess.run(
        [str(pg_isready), "-q", "-h", LOOPBACK, "-p", str(port), "-U", PG_USER, "-d", "postgres"],
        check=False,
        timeout=timeout + 5,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PGCONNECT_TIMEOUT": str(max(1, int(timeout)))},
    )
    return result.returncode == 0


def start_postgres(
    workdir: str | os.PathLike[str],
    *,
    database: str = PG_DATABASE,
    timeout: float = 60.0,
    attempts: int = 3,
) -> Child:
    """initdb a throw-away cluster and run PostgreSQL on a free loopback port.

    Trust authentication, no durability (fsync, full_page_writes and synchronous_commit
    off): a test database. Creates ``database``; ``.url`` points at it as user postgres.
    """
    bindir = find_pg_bindir()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    run_as = PG_USER if os.geteuid() == 0 else None
    if run_as is not None:
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            raise ChildError(
                "running as root, and there is no 'postgres' user to run initdb as"
            ) from None
    base, cleanups = _pg_base_dir(workdir, run_as)
    data_dir = base / "data"
    socket_dir = base / "sockets"
    socket_dir.mkdir()
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(socket_dir, entry.pw_uid, entry.pw_gid)

    def launch(port: int) -> Child:
        log_path = base / f"postgres-{port}.log"
        if run_as is not None:
            log_path.touch()
            entry = pwd.getpwnam(run_as)
            os.chown(log_path, entry.pw_uid, entry.pw_gid)
        argv = [
            str(bindir / "postgres"),
            "-D", str(data_dir),
            "-p", str(port),
            "-k", str(socket_dir),
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
            "-c", "max_connections=200",
            "-c", "logging_collector=off",
        ]  # fmt: skip
        postgres = start(
            "postgres",
            argv,
            log=log_path,
            cwd=base,
            user=run_as,
            # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
            stop_signal=signal.SIGINT,
            port=port,
            url=f"postgres://{PG_USER}@{LOOPBACK}:{port}/{database}",
        )
        postgres.wait_until(
            functools.partial(pg_ready, bindir, port), timeout=timeout, what="pg_isready"
        )
        try:
            _create_database(bindir, port, database)
        except BaseException:
            postgres.stop()
            raise
        return postgres

    with contextlib.ExitStack() as on_failure:
        for cleanup in cleanups:
            on_failure.callback(cleanup)
        _run_checked(
            [
                str(bindir / "initdb"),
                "-D", str(data_dir),
                "-U", PG_USER,
                "-A", "trust",
                "-E", "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            user=run_as,
            what="initdb",
            timeout=120,
        )  # fmt: skip
        postgres = start_on_free_port(launch, attempts=attempts)
        on_failure.pop_all()
    for cleanup in cleanups:
        postgres.add_cleanup(cleanup)
    return postgres


def start_postgres_again(postgres: Child, *, timeout: float = 60.0) -> Child:
    """The server of ``start_postgres``, stopped with ``stop_for_now()`` (its cluster
    kept), started once more on its port with its data: as a restart finds it."""
    again = postgres.again()
    port = postgres.port or 0
    return again.wait_until(
        functools.partial(pg_ready, find_pg_bindir(), port),
        timeout=timeout,
        what="pg_isready",
    )


def _create_database(bindir: Path, port: int, database: str) -> None:
    createdb = bindir / "createdb"
    if createdb.exists():
        argv = [str(createdb), "-h", LOOPBACK, "-p", str(port), "-U", PG_USER, database]
    else:
        psql = shutil.which("psql") or str(bindir / "psql")
        argv = [
            psql, "-h", LOOPBACK, "-p", str(port), "-U", PG_USER, "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{database}"',
        ]  # fmt: skip
    _run_checked(argv, user=None, what=f"creating database {database}", timeout=60)


# --------------------------------------------------------------------------- CLI


def _run_child(argv: Sequence[str], env: dict[str, str], grace: float = 10.0) -> int:
    """Run the command, forwarding SIGTERM/SIGHUP to it; returns a shell-style status.

    Ctrl-C in a terminal already reaches the command (same process group), so SIGINT is
    not forwarded at once; if the command is still running ``grace`` seconds after a
    signal, it gets SIGTERM, then SIGKILL.
    """
    try:
        child = subprocess.Popen(list(argv), env=env)
    except FileNotFoundError:
        print(f"services.py: command not found: {argv[0]}", file=sys.stderr)
        return 127
    signalled: list[float] = []

    def forward(signum: int, _frame: object) -> None:
        signalled.append(time.monotonic())
        if signum != signal.SIGINT and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    previous = {
        sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        escalation = [signal.SIGTERM, signal.SIGKILL]
        while True:
            try:
                status = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if signalled and time.monotonic() - signalled[-1] > grace and escalation:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(escalation.pop(0))
                signalled.append(time.monotonic())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="services.py",
        description="Start redis-server and PostgreSQL on free loopback ports around a command.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser(
        "run",
        help="run a command with REDIS_URL, DATABASE_URL and TEST_DATABASE_URL set",
        usage="services.py run [--no-postgres] [--workdir DIR] -- COMMAND [ARG ...]",
    )
    run.add_argument("--no-postgres", action="store_true", help="start only redis")
    run.add_argument(
        "--workdir", help="keep the servers' files here (default: a temporary directory)"
    )
    opts = parser.parse_args(args)
    if not command:
        parser.error("no command given: services.py run [--no-postgres] -- COMMAND [ARG ...]")

    # SIGTERM while the servers start up: stop cleanly through the ExitStack below.
    def stop_starting(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous_term = signal.signal(signal.SIGTERM, stop_starting)
    # Left last started first: the servers, then their temporary directory.
    with contextlib.ExitStack() as running:
        running.callback(signal.signal, signal.SIGTERM, previous_term)
        if opts.workdir:
            workdir = Path(opts.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(
                running.enter_context(tempfile.TemporaryDirectory(prefix="playground-services-"))
            )
        try:
            env = dict(os.environ)
            redis = running.enter_context(start_redis(workdir / "redis"))
            env["REDIS_URL"] = redis.url
            print(f"services.py: redis {redis.url} (pid {redis.pid})", file=sys.stderr)
            if not opts.no_postgres:
                postgres = running.enter_context(start_postgres(workdir))
                env["DATABASE_URL"] = postgres.url
                env["TEST_DATABASE_URL"] = postgres.url
                print(f"services.py: postgres {postgres.url} (pid {postgres.pid})", file=sys.stderr)
            signal.signal(signal.SIGTERM, previous_term)
            return _run_child(command, env)
        except ChildError as exc:
            print(f"services.py: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
