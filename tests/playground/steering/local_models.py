"""The local model's server as the steering tests see it: each pane (told apart by its
temperature) answers "<letter><questions it was asked>" (A1, B2, ...), every request kept."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx
from django.conf import settings

from tests.playground.helpers import send_form, sse_chunks

LOCAL = "local:smollm2"
HTMX = {"HTTP_HX_REQUEST": "true"}
TEMPS = (0.1, 0.2, 0.3)  # tells the panes apart in the requests
NAMES = {0.1: "A", 0.2: "B", 0.3: "C"}


class Models:
    """The local model's server, answering each pane "<letter><turn>" (A1, B1, ...) and
    keeping every request body."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail: set[str] = set()
        mock.post(f"{settings.PLAYGROUND_LOCAL_MODEL_URL}/chat/completions").mock(
            side_effect=self.answer
        )

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        letter = NAMES.get(body.get("temperature"), "N")
        if letter in self.fail:
            return httpx.Response(500, json={"error": {"message": "upstream broke"}})
        turns = sum(1 for m in body["messages"] if m["role"] == "user")
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=b"".join(sse_chunks([f"{letter}{turns}"])),
        )

    def take(self) -> dict[str, list[dict[str, Any]]]:
        """The messages each pane was sent since the last take, by letter."""
        sent = {NAMES.get(b.get("temperature"), "N"): b["messages"] for b in self.bodies}
        self.bodies = []
        return sent


def form(prompt: str, panes: int = 3, asked: list[int] | None = None, **extra: str) -> dict:
    data = send_form(prompt, [(LOCAL, {"temperature": t}) for t in TEMPS[:panes]])
    if asked is not None:
        data["asking"] = "1"
        for position in asked:
            data[f"pane-{position}-ask"] = "on"
    data.update(extra)
    return data


def u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def a(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}
