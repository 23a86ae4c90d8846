"""The layout shows the processes: the web process never loads the worker's wing, and the
modules' imports run one way (no circles, no arrows back up). See docs/architecture.md."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("playground", "providers")


def modules() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ours that ``name`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` names a module; else the module itself.
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [t if t in known else node.module for t in targets]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_the_web_process_never_loads_the_worker_wing() -> None:
    """daphne's ASGI application, every URL's view and the admin, imported in a fresh
    interpreter as daphne does: no module of playground.worker is loaded (its sockets
    patch httpcore, and its code is the worker's alone)."""
    script = (
        "import json, sys\n"
        "from playground.asgi import application\n"
        "import playground.urls, playground.admin\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings"}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert "playground.live.consumer" in loaded  # it did load the web process
    assert "playground.views.send" in loaded
    assert "playground.tasks" in loaded  # the door, to enqueue
    assert [m for m in loaded if m.startswith("playground.worker")] == []


def test_imports_make_no_circle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            circle = path[path.index(name) :] + [name]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if name in done:
            return
        for target in sorted(edges[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_no_arrow_runs_back_up() -> None:
    """providers knows nothing of the playground; only the worker's door opens the worker's
    wing; the live path never imports the pages; the domain modules below them import
    nothing of theirs but the response log's format (``live.response_log``, a leaf)."""
    edges = graph()
    wings = ("playground.live", "playground.views", "playground.worker")
    entry_points = {
        "playground.asgi",
        "playground.routing",
        "playground.urls",
        "playground.tasks",
        "playground.admin",
    }

    def importers(prefix: str) -> set[str]:
        return {m for m, targets in edges.items() if any(t.startswith(prefix) for t in targets)}

    assert {m for m in importers("playground") if m.startswith("providers")} == set()
    outside = {m for m in importers("playground.worker") if not m.startswith("playground.worker")}
    assert outside == {"playground.tasks"}
    assert {m for m in importers("playground.views") if m.startswith("playground.live")} == set()
    for module, targets in edges.items():
        if module.startswith(("providers", *wings)) or module in entry_points:
            continue
        above = {t for t in targets if t.startswith(wings)}
        assert above <= {"playground.live.response_log"}, f"{module} imports {above}"
    assert {t for t in edges["playground.live.response_log"] if t.startswith("playground")} == set()
