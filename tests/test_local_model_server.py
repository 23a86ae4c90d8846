"""The local model server `make run` starts listens where it was told, whatever a PORT or
HOST in the environment says (llama-cpp-python's server reads both over its flags)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from scripts.children import LOOPBACK, free_port
from scripts.local_model import models_ready, start_local_model


def test_the_local_model_listens_on_its_own_port_whatever_port_and_host_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    web_port = free_port()  # as `PORT=<web_port> make run` leaves it for every child
    monkeypatch.setenv("PORT", str(web_port))
    monkeypatch.setenv("HOST", "0.0.0.0")
    own_port = free_port()
    model = start_local_model(own_port, log_dir=tmp_path, timeout=90)
    try:
        assert models_ready(f"http://{LOOPBACK}:{own_port}")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, web_port), timeout=2).close()
        log = (tmp_path / f"local-model-{own_port}.log").read_text()
        assert f"Uvicorn running on http://{LOOPBACK}:{own_port}" in log
    finally:
        model.stop()
