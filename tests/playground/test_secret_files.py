"""Files holding secrets (the secret key and vault key make run keeps in var/, the first
admin's password) are readable by their owner only from their first byte: LiteLLM #31620
class (secrets where others can read them). Created 0600 whatever the umask, under a
temporary name and then given theirs, so no one reads them, or half of them, for a moment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from playground import secret_files
from playground import settings as pg_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def modes_while_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, int]]:
    """Every file in tmp_path and its mode, seen at the moment a secret's bytes were
    flushed to disk (before the file got its name)."""
    seen: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        seen.extend((p.name, mode(p)) for p in tmp_path.iterdir())

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


@pytest.mark.usefixtures("umask_022")
def test_litellm_31620_a_kept_secret_is_0600_from_its_first_byte(
    tmp_path: Path, modes_while_written: list[tuple[str, int]]
) -> None:
    path = tmp_path / "vault_key"

    value = secret_files.kept_secret(path, lambda: "s3cret-value")

    assert value == "s3cret-value"
    assert mode(path) == 0o600  # umask 022 would have made it 0644
    assert modes_while_written, "the secret was never flushed to disk before being named"
    assert all(m == 0o600 for _name, m in modes_while_written), modes_while_written
    assert [p.name for p in tmp_path.iterdir()] == ["vault_key"]  # no temporary left


@pytest.mark.usefixtures("umask_022")
def test_litellm_31620_a_replaced_secret_is_0600_too(
    tmp_path: Path, modes_while_written: list[tuple[str, int]]
) -> None:
    path = tmp_path / "admin_password"
    path.write_text("old\n")
    path.chmod(0o644)

    secret_files.write_secret(path, "new\n")

    assert path.read_text() == "new\n"
    assert mode(path) == 0o600
    assert all(m == 0o600 for name, m in modes_while_written if name != "admin_password")


def test_a_secret_left_readable_by_an_older_version_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("kept\n")
    path.chmod(0o644)

    assert secret_files.kept_secret(path, lambda: "other") == "kept"
    assert mode(path) == 0o600


def test_processes_starting_at_once_all_read_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    start = threading.Barrier(16)
    values: list[str] = []

    def read() -> None:
        start.wait()
        values.append(secret_files.kept_secret(path, lambda: os.urandom(16).hex()))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(values) == 16 and len(set(values)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


@pytest.mark.django_db
@pytest.mark.usefixtures("umask_022")
def test_litellm_31620_the_first_admin_s_password_file_is_0600(
    settings: Any, tmp_path: Path, modes_while_written: list[tuple[str, int]]
) -> None:
    settings.VAR_DIR = tmp_path

    call_command("ensure_admin", stdout=open(os.devnull, "w"))  # noqa: SIM115

    path = tmp_path / "admin_password"
    assert mode(path) == 0o600
    assert modes_while_written and all(m == 0o600 for _n, m in modes_while_written)


def test_litellm_31620_make_run_s_keys_are_0600_under_umask_022(tmp_path: Path) -> None:
    """Start-up without SECRET_KEY (make run's way) writes var/secret_key and var/vault_key,
    each 0600 although the process's umask is 022."""
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "PLAYGROUND_VAULT_KEY"}}
    env.update(DJANGO_SETTINGS_MODULE="playground.settings", PLAYGROUND_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "import os; os.umask(0o022); import django; django.setup()"],
        cwd=str(pg_settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "secret_key": 0o600,
        "vault_key": 0o600,
    }
