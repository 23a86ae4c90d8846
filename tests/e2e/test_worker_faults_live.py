"""The worker dies mid-answer, or is told to stop: the real stack (daphne, a Celery worker
kept running by make run's supervisor, a Redis of its own) and a fake upstream that writes
numbered tokens slowly (bench/upstream.py). What a person sees in the browser, what the
rows and the quota counters hold, and what the upstream was asked."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import expect

from bench.upstream import running as fake_upstream
from playground import shared_caches
from playground.live.watchdog import INTERRUPTED_MESSAGE
from playground.models import Quota, QuotaCounter, QuotaScope, Response, Status, UsageEntry
from playground.worker.shutdown import SHUTDOWN_MESSAGE
from scripts.children import Child
from scripts.services import start_redis
from scripts.supervisor import Supervised
from tests.e2e.conftest import Stack, stack_env

KEY = "sk-fault-upstream-key-0000000000"
MODEL = "openai:gpt-4.1-mini"
TOKENS = 60  # every answer's length: a quota's longest answer, sent as Max tokens
TOKEN = re.compile(r"\b(\d+):\d+\b")


@contextlib.contextmanager
def supervising(worker: Supervised) -> Iterator[threading.Event]:
    """Check the worker as make run's loop does, every 0.2 s, until the block ends."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(0.2):
            worker.check()

    thread = threading.Thread(target=loop, name="supervisor", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        done.set()
        thread.join(5)


@pytest.fixture(scope="module")
def faults(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any
) -> Iterator[tuple[Stack, Supervised, str, list[Child]]]:
    """One daphne and one supervised worker on a Redis of their own (not the run's: its
    workers would take these tasks), the upstream as OpenAI's."""
    tmp: Path = tmp_path_factory.mktemp("faults")
    with contextlib.ExitStack() as running:
        first = start_redis(tmp / "redis")
        redises = [first]  # the one running last, after a test restarted it
        running.callback(lambda: redises[-1].stop())
        upstream = running.enter_context(fake_upstream(rate=5, key=KEY))
        with django_db_blocker.unblock():
            env = stack_env(
                tmp,
                REDIS_URL=first.url,
                PLAYGROUND_OPENAI_BASE_URL=upstream,
                OPENAI_API_KEY=KEY,
                PLAYGROUND_LOCAL_MODEL_URL="",
                PLAYGROUND_SHUTDOWN_GRACE_SECONDS="3",
                # One answer at a time at the upstream: a second pane waits for the slot.
                PLAYGROUND_ENDPOINT_CONCURRENCY="1",
                PLAYGROUND_SWEEP_SECONDS="3",
            )
        stack = Stack(env, tmp)
        running.callback(stack.stop)
        stack.start_web()
        worker = Supervised("celery worker", stack.start_worker, first_pause=0.5)
        running.enter_context(worker)
        yield stack, worker, upstream, redises


def upstream_stats(upstream: str) -> dict[str, int]:
    with urllib.request.urlopen(upstream.removesuffix("/v1") + "/stats", timeout=5) as answer:
        return dict(json.load(answer))


def redeliver(redis_url: str, turn_id: int, response_ids: list[int]) -> None:
    """The turn's task once more, as Celery redelivers one whose worker died (acks_late)."""
    from celery import Celery

    app = Celery(broker=redis_url)
    try:
        app.send_task("playground.run_turn", args=[turn_id, response_ids])
    finally:
        app.close()


@pytest.fixture
def person_page(faults: Any, browser: Any, e2e_user: Any, clean_redis: Any) -> Iterator[Any]:
    from tests.conftest import PASSWORD

    stack, _worker, _upstream, _redis = faults
    Quota.objects.create(
        scope=QuotaScope.USER, user=e2e_user, tokens_per_month=10**9, max_answer_tokens=TOKENS
    )
    # Saving it told the run's Redis; daphne learns of it from the stack's (else a Send
    # soon after an earlier test's can miss it, and its answer is the upstream's 50 tokens).
    with redis.Redis.from_url(stack.env["REDIS_URL"]) as client:
        client.incr(shared_caches.VERSIONS["quotas"])
    context = browser.new_context(base_url=stack.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(e2e_user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    stack.wait_for_catalog(context.request, offers=MODEL)
    yield page
    context.close()


def send(page: Any, models: str, prompt: str = "Count slowly") -> None:
    page.goto(f"/?models={models}")
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))


def tokens_shown(page: Any, index: int = 0) -> list[int]:
    text = page.locator("section.pane").nth(index).locator("article .text").last.inner_text()
    return [int(n) for n in TOKEN.findall(text)]


def wait_for_tokens(page: Any, count: int, index: int = 0) -> list[int]:
    deadline = time.monotonic() + 20
    while len(shown := tokens_shown(page, index)) < count:
        assert time.monotonic() < deadline, f"only {shown} shown"
        time.sleep(0.1)
    return shown


def assert_settled_once(response: Response) -> None:
    assert UsageEntry.objects.filter(response=response).count() == 1
    reserved = QuotaCounter.objects.values_list("reserved_tokens", "reserved_spend")
    assert list(reserved) and all(tokens == 0 and spend == 0 for tokens, spend in reserved)


def test_worker_killed_mid_answer_is_restarted_and_the_pane_keeps_every_word_shown(
    faults: Any, person_page: Any
) -> None:
    stack, worker, upstream, _redis = faults
    page = person_page
    served = upstream_stats(upstream)["served"]
    with supervising(worker):
        send(page, MODEL)
        response = Response.objects.get()
        wait_for_tokens(page, 2)
        # The task delivered again while its pane streams: no second call for the pane.
        redeliver(stack.env["REDIS_URL"], response.turn_id, [response.pk])
        wait_for_tokens(page, 6)
        first = worker.child
        assert first is not None
        first.kill()  # SIGKILL, as the kernel's OOM killer would
        shown = tokens_shown(page)
        killed = time.monotonic()

        article = page.locator("article.status-interrupted")
        expect(article).to_be_visible(timeout=10_000)
        noticed = time.monotonic() - killed
        expect(article.locator(".error")).to_have_text(INTERRUPTED_MESSAGE)
        final = tokens_shown(page)
        assert final[: len(shown)] == shown == list(range(1, len(shown) + 1))
        assert noticed < 10

        response.refresh_from_db()
        assert response.status == Status.INTERRUPTED
        assert [int(n) for n in TOKEN.findall(response.text)][: len(shown)] == shown
        assert_settled_once(response)
        assert upstream_stats(upstream)["served"] == served + 1

        # Started again by the supervisor; the same task once more changes nothing.
        deadline = time.monotonic() + 30
        while not (worker.child is not first and worker.alive()):
            assert time.monotonic() < deadline, "the worker was not started again"
            time.sleep(0.2)
        redeliver(stack.env["REDIS_URL"], response.turn_id, [response.pk])
        send(page, "echo")  # the new worker answers
        expect(page.locator("article.status-done")).to_have_count(1, timeout=20_000)
    assert upstream_stats(upstream)["served"] == served + 1
    response.refresh_from_db()
    assert response.status == Status.INTERRUPTED
    assert UsageEntry.objects.filter(response=response).count() == 1


def test_a_pane_killed_while_nobody_watches_is_ended_and_settled_by_a_workers_sweep(
    faults: Any, person_page: Any
) -> None:
    """The page is closed, then the worker is killed: no page looks at the pane again, yet
    the worker started next ends it "interrupted" with what it had shown, and settles it,
    within a heartbeat's life, a sweep's interval (3 s here) and its two looks."""
    _stack, worker, _upstream, _redis = faults
    page = person_page
    with supervising(worker):
        send(page, MODEL)
        shown = wait_for_tokens(page, 4)
        page.goto("about:blank")  # nobody follows the pane from now on
        first = worker.child
        assert first is not None
        first.kill()
        killed = time.monotonic()
        response = Response.objects.get()
        while response.status == Status.STREAMING:
            assert time.monotonic() - killed < 30, "the pane was never ended"
            time.sleep(0.2)
            response.refresh_from_db()
        ended_after = time.monotonic() - killed

    assert (response.status, response.error) == (Status.INTERRUPTED, INTERRUPTED_MESSAGE)
    tokens = [int(n) for n in TOKEN.findall(response.text)]
    assert tokens[: len(shown)] == shown and tokens == list(range(1, len(tokens) + 1))
    assert_settled_once(response)
    assert ended_after < 5 + 3 + 2 + 10  # the heartbeat, a round, two looks; a restart


def test_a_worker_told_to_stop_lets_short_answers_finish_and_hands_back_the_rest(
    faults: Any, person_page: Any
) -> None:
    _stack, worker, _upstream, _redis = faults
    page = person_page
    send(page, f"{MODEL},echo")
    wait_for_tokens(page, 3)
    child = worker.child
    assert child is not None and worker.alive()

    stopping = time.monotonic()
    status = child.stop(timeout=30)  # SIGTERM, then SIGKILL after 30 s
    took = time.monotonic() - stopping
    worker.start()  # for the tests after this one

    assert status == 0  # it exited by itself, after its 3 s grace: not SIGKILLed
    assert took < 10
    slow, echo = Response.objects.order_by("pane__position")
    assert echo.status == Status.DONE  # it finished within the grace period
    assert (slow.status, slow.error) == (Status.INTERRUPTED, SHUTDOWN_MESSAGE)
    tokens = [int(n) for n in TOKEN.findall(slow.text)]
    assert tokens == list(range(1, len(tokens) + 1)) and 3 <= len(tokens) < TOKENS
    for response in (slow, echo):
        assert UsageEntry.objects.filter(response=response).count() == 1
    assert all(r == 0 for r in QuotaCounter.objects.values_list("reserved_tokens", flat=True))
    article = page.locator("article.status-interrupted")
    expect(article.locator(".error")).to_have_text(SHUTDOWN_MESSAGE)


def test_a_worker_told_to_stop_hands_a_waiting_answer_to_the_next_worker_whole(
    faults: Any, person_page: Any
) -> None:
    """Two panes of one model at an endpoint of one slot: the second waits (no call made,
    no Celery thread held). A worker told to stop queues it again at once, and the worker
    started next answers it from the start: every token, one call, never two at once."""
    _stack, worker, upstream, _redis = faults
    page = person_page
    served = upstream_stats(upstream)["served"]
    send(page, f"{MODEL},{MODEL}")
    wait_for_tokens(page, 3)
    waiting = page.locator("section.pane").nth(1).locator("article .status")
    expect(waiting).to_contain_text("waiting for")
    child = worker.child
    assert child is not None and worker.alive()

    stopping = time.monotonic()
    status = child.stop(timeout=30)  # SIGTERM, then SIGKILL after 30 s
    took = time.monotonic() - stopping
    first, second = Response.objects.order_by("pane__position")
    handed_back = second.status
    worker.start()

    assert status == 0 and took < 10
    assert handed_back == Status.PENDING  # queued again, not ended
    answered = page.locator("section.pane").nth(1).locator("article.status-done")
    expect(answered).to_be_visible(timeout=30_000)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.error) == (Status.INTERRUPTED, SHUTDOWN_MESSAGE)
    # Whole: the upstream's answer to its end, every token once, in order. (Its length is
    # the quota's longest answer, or the upstream's 50 when a web process's few-second
    # copy of the quotas predates this test's.)
    assert (second.status, second.finish_reason, second.error) == (Status.DONE, "stop", "")
    tokens = [int(n) for n in TOKEN.findall(second.text)]
    assert tokens == list(range(1, len(tokens) + 1)) and len(tokens) >= 50
    assert tokens_shown(page, 1) == tokens
    assert upstream_stats(upstream)["served"] == served + 2  # one call per pane
    for response in (first, second):
        assert UsageEntry.objects.filter(response=response).count() == 1
    assert all(r == 0 for r in QuotaCounter.objects.values_list("reserved_tokens", flat=True))


RECORD_TEXTS = """
document.addEventListener("htmx:wsAfterMessage", () => {
  const texts = document.querySelectorAll("section.pane article .text");
  if (texts.length) window.recordText(texts[texts.length - 1].textContent);
});
"""


def test_redis_restarted_mid_answer_loses_nothing_shown_and_the_answer_ends_whole(
    faults: Any, person_page: Any
) -> None:
    """Redis (without persistence here: the log, the queue and the heartbeats are gone)
    restarts on its port while a pane streams: the worker rides it out and writes the
    log again, the page says it is reconnecting and then resumes from what it shows (no
    token lost or shown twice at any moment), the worker is not taken for dead, the answer
    ends with every token, and the next Send is answered."""
    _stack, worker, _upstream, redises = faults
    page = person_page
    texts: list[str] = []
    page.expose_function("recordText", lambda text: texts.append(text))
    page.add_init_script(RECORD_TEXTS)
    restarts = worker.restarts  # an earlier test of this file killed it
    with supervising(worker):
        send(page, MODEL)
        shown = wait_for_tokens(page, 5)
        server = redises[-1]
        server.stop()
        expect(page.locator("#connection")).to_have_text("Reconnecting…", timeout=5_000)
        time.sleep(1)
        redises.append(start_redis(Path(server.log_path or ".").parent, port=server.port))
        back = time.monotonic()
        before = len(tokens_shown(page))
        while len(tokens_shown(page)) <= before:
            assert time.monotonic() - back < 15, "the page did not resume"
            time.sleep(0.05)
        resumed = time.monotonic() - back
        # What the page showed before Redis went is in the row too (the checkpoint).
        response = Response.objects.get()
        assert [int(n) for n in TOKEN.findall(response.text)][: len(shown)] == shown

        expect(page.locator("article.status-done")).to_have_count(1, timeout=30_000)
        assert tokens_shown(page)[: len(shown)] == shown
        assert tokens_shown(page) == list(range(1, TOKENS + 1))
        expect(page.locator("#connection")).to_have_text("")
        assert len(texts) > 10
        for text in texts:  # every text the pane showed: a beginning of the answer
            tokens = [int(n) for n in TOKEN.findall(text)]
            assert tokens == list(range(1, len(tokens) + 1)), text
        response.refresh_from_db()
        assert response.status == Status.DONE
        assert [int(n) for n in TOKEN.findall(response.text)] == list(range(1, TOKENS + 1))
        assert_settled_once(response)

        send(page, "echo")  # the worker takes new work from the Redis that came back
        expect(page.locator("article.status-done")).to_have_count(1, timeout=20_000)
        assert worker.restarts == restarts
    print(f"the page showed a new token {resumed:.2f} s after Redis was back")
