"""Files that hold secrets: the secret key and the vault key ``make run`` keeps in var/, and
the first admin's password.

Each is readable by its owner only (mode 0600) from its first byte: it is written under a
temporary name created with that mode (``os.open``, ``O_EXCL``), then given its name in
one step, so no other user can read it for a moment, whatever the umask, and no process
ever reads half a file. Standard library only: settings use it before Django is set up.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

MODE = 0o600


def _written(path: Path, text: str) -> Path:
    """A new file beside ``path`` holding ``text``, mode 0600; its name is the caller's to
    change or remove."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    try:
        os.fchmod(fd, MODE)  # the umask may have taken bits away; never adds any
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def write_secret(path: Path, text: str) -> None:
    """Put ``text`` in ``path`` (replacing what was there), readable by its owner only."""
    temporary = _written(path, text)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path``; made by ``make`` and written there first when there is
    none. Processes starting at once all read the one that got there first (the file is
    linked into place only when complete, and never replaced). A file left readable by
    others by an older version is narrowed to 0600."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    temporary = _written(path, make() + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: theirs is the one
    finally:
        os.unlink(temporary)
    return _read(path)


def _read(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        path.chmod(MODE)
    return path.read_text(encoding="utf-8").strip()
