"""A saved key exists in plaintext only inside the worker during a call. A person's key
is used for a comparison on the real stack (daphne, Celery workers, Redis, the database),
and the secret is looked for everywhere else: every command Redis received (the Celery
messages and the pane logs among them) and what it holds afterwards, every HTTP response
and websocket frame the browser got, the processes' logs, and every row of the database.
The fake vendor is the only place it may arrive."""

from __future__ import annotations

import re
import threading
from typing import Any

import redis
from django.apps import apps
from django.conf import settings
from django.core import serializers
from playwright.sync_api import expect

from playground.credentials import seal_parts
from playground.models import Credential, Response

SECRET = "sk-proj-secrecy-5b2f9c7e1a8d4e60"


class RedisMonitor:
    """Every command Redis runs while it is on (MONITOR), as text."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.commands: list[str] = []
        self.ready = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for command in monitor.listen():
                self.commands.append(str(command.get("command", "")))
                if self.stopped:
                    return

    def stop(self) -> None:
        self.stopped = True
        self.client.ping()  # one more command, so the listener sees it is stopped
        self.thread.join(5)


def test_a_saved_key_is_nowhere_but_in_the_call(page: Any, stack: Any, e2e_user: Any) -> None:
    """LiteLLM #31620 class (keys in logs): the key is in no log line, task message, Redis
    value, database column in clear, HTTP response or websocket frame, only in the call."""
    base_url = f"{stack.vendors.url}/v1"
    key = Credential(
        scope="user", user=e2e_user, provider="openai", label="work", base_url=base_url
    )
    seal_parts(key, {"api_key": SECRET})
    key.save()
    bodies: list[str] = []
    frames: list[str] = []

    def keep_body(response: Any) -> None:
        try:
            bodies.append(response.text())
        except Exception:  # noqa: BLE001 - redirects and aborted requests have no body
            return

    page.on("response", keep_body)
    page.on(
        "websocket",
        lambda ws: (
            ws.on("framereceived", lambda f: frames.append(str(f))),
            ws.on("framesent", lambda f: frames.append(str(f))),
        ),
    )
    monitor = RedisMonitor()
    try:
        page.goto("/")
        panes = page.locator("section.pane")
        panes.nth(0).get_by_label("Model").select_option(label="OpenAI · GPT-4.1 mini")
        panes.nth(1).get_by_label("Model").select_option(label="Echo")
        page.get_by_label("Prompt").fill("Say something short.")
        page.get_by_role("button", name="Send").click()
        page.wait_for_url(re.compile(r"/s/\d+/$"))
        openai = page.get_by_role("region", name="OpenAI · GPT-4.1 mini")
        expect(openai.locator("article.status-done")).to_have_count(1, timeout=30_000)
        expect(openai.locator(".status").last).to_contain_text("your key 'work'")
        page.reload()
        expect(openai.locator("article.status-done")).to_have_count(1)
    finally:
        monitor.stop()

    # The call carried it, to the server it was saved for.
    sent = [r for r in stack.vendors.requests if r["body"].get("model") == "gpt-4.1-mini"]
    assert sent[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert Response.objects.get(model_key="openai:gpt-4.1-mini").key_scope == "user"

    assert monitor.commands, "Redis MONITOR saw nothing"
    assert any("playground.run_turn" in c or "celery" in c for c in monitor.commands)
    leaks = {
        "Redis commands (Celery messages, pane logs)": "\n".join(monitor.commands),
        "HTTP responses": "\n".join(bodies),
        "websocket frames": "\n".join(frames),
        "logs": "\n".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log")),
        "Redis afterwards": "\n".join(
            repr(monitor.client.dump(k)) for k in monitor.client.scan_iter(count=1000)
        ),
        "database": "\n".join(
            serializers.serialize("json", model.objects.all())
            for model in apps.get_models()
            if model._meta.managed
        ),
    }
    assert bodies and frames
    for where, text in leaks.items():
        assert SECRET not in text, f"the key is in the {where}"
        assert SECRET[-12:] not in text, f"part of the key is in the {where}"
