"""Resource exhaustion by one signed-in account (issue 15, "no one starves the rest"): one
account fires Sends of eight slow Echo panes as fast as it can, in parallel, and opens many
sockets, while a second person sends one comparison in the browser. The second person's panes
start and stream to their end within 10 s, and every fair-use cap holds for the first: turns
at once, Sends per minute, panes per turn, the longest an answer may run, sockets per person
(each refusal a sentence).

The caps are those of a daphne and a Celery worker started for this test (Sends per minute
and the longest answer set low, so the test sees them in seconds); the run's own workers
are stopped meanwhile, so that this worker takes every turn."""

from __future__ import annotations

import html
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from playground.models import Response, Session, Status
from providers.registry import provider_class
from tests.e2e.test_comparison import set_pane

SENDS_PER_MINUTE = 12
LONGEST_S = 20
ECHO_PARAMS = [p.name for p in provider_class("echo").params]
CSRF_FORM = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_HEADER = re.compile(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'")
REFUSAL = re.compile(r'<ul class="errors"><li>(.*?)</li>', re.S)


@pytest.fixture
def own_stack(stack: Any) -> Iterator[str]:
    """A daphne and a worker with this test's limits; the run's workers stopped meanwhile."""
    shared = len(stack.workers)
    stack.stop_workers()
    saved = dict(stack.env)
    stack.env.update(
        PLAYGROUND_FAIR_SENDS_PER_MINUTE=str(SENDS_PER_MINUTE),
        PLAYGROUND_PANE_MAX_SECONDS=str(LONGEST_S),
    )
    webs = len(stack.webs)
    try:
        url = stack.start_web()
        stack.start_worker()
        yield url
    finally:
        stack.env.clear()
        stack.env.update(saved)
        stack.stop_workers()
        from scripts.children import stop_all

        stop_all(stack.webs[webs:])
        del stack.webs[webs:]
        del stack.web_urls[webs:]
        for _ in range(shared):
            stack.start_worker()


class Account:
    """A signed-in account driven over HTTP, as fast as a script can."""

    def __init__(self, url: str, username: str) -> None:
        from tests.conftest import PASSWORD

        self.url = url
        self.client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
        login = self.client.get("/login/").text
        token = CSRF_FORM.search(login)
        assert token is not None
        reply = self.client.post(
            "/login/",
            data={"csrfmiddlewaretoken": token.group(1), "username": username,
                  "password": PASSWORD},
        )  # fmt: skip
        assert reply.status_code == 302
        header = CSRF_HEADER.search(self.client.get("/").text)
        assert header is not None
        self.csrf = header.group(1)
        self.lock = threading.Lock()

    def send(self, panes: int, delay_ms: int, repeat: int, prompt: str) -> tuple[str, str]:
        """("sent", session id) or ("refused", its sentence)."""
        form: list[tuple[str, str]] = []
        for i in range(panes):
            form += [("pane", str(i)), (f"pane-{i}-model", "echo")]
            values = {"delay_ms": str(delay_ms), "repeat": str(repeat)}
            form += [(f"pane-{i}-p-{name}", values.get(name, "")) for name in ECHO_PARAMS]
        form += [("system_prompt", ""), ("tools", ""), ("image_urls", ""), ("prompt", prompt)]
        reply = self.client.post(
            "/send/",
            content=urlencode(form).encode(),
            headers={"HX-Request": "true", "HX-Current-URL": self.url + "/",
                     "X-CSRFToken": self.csrf,
                     "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert reply.status_code == 200, reply.text[:300]
        if reply.headers.get("HX-Redirect"):
            return "sent", reply.headers["HX-Redirect"].rstrip("/").rsplit("/", 1)[1]
        refusal = REFUSAL.search(reply.text)
        assert refusal is not None, reply.text[:500]
        return "refused", html.unescape(" ".join(refusal.group(1).split()))

    def stop(self, session_id: str) -> None:
        self.client.post(f"/s/{session_id}/stop/", headers={"X-CSRFToken": self.csrf})

    def socket(self, session_id: str) -> Any:
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        return connect(
            self.url.replace("http://", "ws://") + f"/ws/sessions/{session_id}/",
            origin=self.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
            open_timeout=10,
        )


def per_minute_sentences() -> set[str]:
    return {
        f"You have sent {SENDS_PER_MINUTE} turns in the last minute, the most one person "
        f"may; send again in {s} s."
        for s in range(1, 61)
    }


def closed_code(ws: Any, seconds: float) -> int | None:
    """The code the socket was closed with within ``seconds``; None while it stays open."""
    try:
        ws.recv(timeout=seconds)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else 1006
    return None


def test_one_account_cannot_starve_another_persons_comparison(
    own_stack: str, browser: Any, e2e_user: Any, django_user_model: Any, clean_redis: Any
) -> None:
    from tests.conftest import PASSWORD

    django_user_model.objects.create_user("mallory", "mallory@example.com", PASSWORD)
    mallory = Account(own_stack, "mallory")
    started = time.monotonic()

    # 1. Forty Sends of eight endless panes at once: four turns may run at a time.
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: mallory.send(8, 2000, 200, f"flood {i}"), range(40)))
    sessions = [value for kind, value in results if kind == "sent"]
    refused = Counter(value for kind, value in results if kind == "refused")
    assert len(sessions) == 4
    at_once = (
        "You have 4 turns still answering; at most 4 may run at once. Wait for one to end, "
        "or stop one."
    )
    # Sends in flight count against the minute until they are refused and taken back, so
    # some of the forty meet that limit first.
    assert refused[at_once] and sum(refused.values()) == 36
    assert set(refused) - {at_once} <= per_minute_sentences()
    # 2. Nine panes in one turn.
    assert mallory.send(9, 0, 1, "nine") == ("refused", "Compare at most 8 models at once.")
    # 3. Thirty sockets (how many stay open is checked below).
    sockets = [mallory.socket(sessions[0]) for _ in range(30)]
    assert Response.objects.filter(
        turn__session__owner__username="mallory", status=Status.STREAMING
    ).exists()

    # 4. Meanwhile a second person compares two models in the browser.
    context = browser.new_context(base_url=own_stack)
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(e2e_user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(own_stack + "/")
    page.goto("/")
    for index in (0, 1):
        set_pane(page, index, "Echo", "1.0", delay_ms="60", repeat="2")
    page.get_by_label("Prompt").fill("one two three four five six")
    sent = time.monotonic()
    page.get_by_role("button", name="Send").click()
    expect(page.locator("article.status-done")).to_have_count(2, timeout=10_000)
    took = time.monotonic() - sent
    answer = "Echo #1: one two three four five six one two three four five six"
    assert [t.strip() for t in page.locator("article .text").all_inner_texts()] == [answer] * 2
    assert took < 10
    mine = Response.objects.filter(turn__session__owner=e2e_user)
    assert [r.waited_ms for r in mine] == [0, 0]  # no slot was wanting for them
    context.close()
    # Twenty of the abuser's sockets stayed open, the others were closed with 4409.
    codes = Counter(closed_code(ws, 0.1) for ws in sockets)
    assert codes == {None: 20, 4409: 10}

    # 5. The longest an answer may run: the abuser's streaming panes are stopped at it,
    # keeping their text.
    flood = Response.objects.filter(turn__session__owner__username="mallory")
    deadline = started + LONGEST_S + 15
    while time.monotonic() < deadline and not flood.filter(finish_reason="time_limit").exists():
        time.sleep(0.5)
    limited = list(flood.filter(finish_reason="time_limit"))
    assert limited, "no answer was stopped at the time limit"
    # (The limit counts from the claim: panes still waiting for a slot of the endpoint then
    # end too, with nothing.)
    assert any(row.text for row in limited)
    for row in limited:
        assert row.status == Status.STOPPED
        # A word every two seconds: what had arrived is a beginning of the answer.
        assert row.text.startswith("Echo #1: flood") or "Echo #1: flood".startswith(row.text)
        assert row.error == (
            f"Stopped after {LONGEST_S} s, the longest one answer may run here; "
            "what had arrived is kept."
        )
        assert row.total_ms < (LONGEST_S + 5) * 1000
    for session_id in sessions:
        mallory.stop(session_id)
    for ws in sockets:
        ws.close()

    # 6. Sends per minute: quick turns one after another, refused past the minute's count.
    if 60 - time.time() % 60 < 20:
        time.sleep(60 - time.time() % 60)  # the count is per minute: all in one
    outcomes = []
    for i in range(SENDS_PER_MINUTE + 3):
        while flood.filter(status__in=[Status.PENDING, Status.STREAMING]).count():
            time.sleep(0.1)
        outcomes.append(mallory.send(1, 0, 1, f"quick {i}"))
    per_minute = [v for k, v in outcomes if k == "refused"]
    assert per_minute and set(per_minute) <= per_minute_sentences()
    # This minute's Sends: the earlier ones (if in the same minute) and these.
    assert sum(k == "sent" for k, _ in outcomes) <= SENDS_PER_MINUTE
    assert Session.objects.filter(owner__username="mallory").count() <= 4 + SENDS_PER_MINUTE
