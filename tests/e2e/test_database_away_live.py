"""PostgreSQL away for a few seconds, on the real stack: daphne, a Celery worker, a Redis
and a PostgreSQL of their own (not the run's: this one is stopped), chromium.

PostgreSQL is stopped as a restart stops it (SIGINT, its "fast" shutdown: every client's
connection is cut, new ones are refused), kept down for ``AWAY_S`` seconds, then started
again on its port with its data. What a person sees meanwhile, and after: a pane streaming
when it went away ends whole; a page loaded meanwhile says so (503); a page whose
websocket dropped meanwhile says so and comes back by itself; a Send meanwhile keeps its
prompt; and how soon the page works again. PostgreSQL is started again whatever happens
in a test (the ``postgres`` fixture), so the tests after it find it running."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from playground.database_away import SENTENCE
from playground.worker.runner import DATABASE_AWAY
from scripts.children import Child
from scripts.services import start_postgres, start_postgres_again, start_redis
from tests.conftest import PASSWORD
from tests.e2e.conftest import ROOT, Stack, stack_env
from tests.e2e.test_live_reconnect import ANSWER, RECORD, start

AWAY_S = 5.0
SOCKET_SENTENCE = "The playground cannot reach its database just now; trying again…"
SESSION_URL = re.compile(r"/s/(\d+)/$")


class Postgres:
    """The stack's PostgreSQL, which a test takes away and brings back."""

    def __init__(self, server: Child) -> None:
        self.server = server
        self.away_since: float | None = None

    def go_away(self) -> None:
        self.server.stop_for_now()
        self.away_since = time.monotonic()

    def come_back(self) -> float:
        """Start it again; when it answers, return the time (``time.monotonic``)."""
        if self.away_since is not None:
            self.server = start_postgres_again(self.server)
            self.away_since = None
        return time.monotonic()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.server.url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: Any) -> Iterator[tuple[Stack, Postgres]]:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's outage: the run's SQLite pass has no PostgreSQL to stop")
    tmp: Path = tmp_path_factory.mktemp("database-away")
    with contextlib.ExitStack() as running:
        redis = running.enter_context(start_redis(tmp / "redis"))
        postgres = Postgres(start_postgres(tmp))
        running.callback(lambda: postgres.server.stop())  # the one running last
        env = stack_env(
            tmp,
            DATABASE_URL=postgres.server.url,
            REDIS_URL=redis.url,
            PLAYGROUND_LOCAL_MODEL_URL="",
        )
        for script in (
            [ROOT / "manage.py", "migrate", "--noinput", "-v", "0"],
            [
                "-c",
                "import django; django.setup()\n"
                "from django.contrib.auth.models import User\n"
                f"User.objects.create_user('erin', 'erin@example.com', {PASSWORD!r})\n",
            ],
        ):
            subprocess.run([sys.executable, *map(str, script)], env=env, cwd=ROOT, check=True)
        stack = Stack(env, tmp)
        running.callback(stack.stop)
        stack.start_web()
        stack.start_worker()
        yield stack, postgres


@pytest.fixture
def postgres(outage_stack: tuple[Stack, Postgres]) -> Iterator[Postgres]:
    """The stack's PostgreSQL, running again after the test whatever happened in it."""
    _stack, server = outage_stack
    try:
        yield server
    finally:
        server.come_back()


@pytest.fixture
def context(outage_stack: tuple[Stack, Postgres], browser: Any) -> Iterator[Any]:
    """A browser signed in as erin; every text each response showed is recorded, in
    order, on every page of it (``context.texts``)."""
    stack, _postgres = outage_stack
    context = browser.new_context(base_url=stack.url)
    context.set_default_timeout(15_000)
    texts: dict[str, list[str]] = {}
    context.expose_function("recordText", lambda rid, text: texts.setdefault(rid, []).append(text))
    context.add_init_script(RECORD)
    context.texts = texts
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    yield context
    context.close()


def start_two_echo_panes(page: Any) -> None:
    # The local model is off here: a new comparison would start with one pane.
    start(page, "/?models=echo,echo")


def whole_answers(page: Any) -> list[str]:
    expect(page.locator("article.status-done")).to_have_count(2, timeout=30_000)
    return [t.strip() for t in page.locator("article.status-done .text").all_inner_texts()]


def test_postgresql_away_mid_answer_loses_nothing_and_the_pages_come_back(
    postgres: Postgres, context: Any
) -> None:
    streaming = context.pages[0]
    sockets: list[Any] = []

    def through(ws: Any) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    # A second tab on the same session: its websocket is dropped while PostgreSQL is away.
    other = context.new_page()
    other.route_web_socket(re.compile(r"/ws/sessions/\d+/$"), through)
    start_two_echo_panes(streaming)  # two panes, 40 words each at 120 ms a word
    session_url = streaming.url
    session_id = int(SESSION_URL.search(session_url).group(1))  # type: ignore[union-attr]
    other.goto(session_url)
    expect(other.locator("article[data-active]")).to_have_count(2)

    postgres.go_away()
    assert streaming.locator("article[data-active]").count() == 2, "it ended before"

    # The tab whose socket drops: it tries again, is told why, and waits.
    sockets[0].close(code=1011, reason="test")
    expect(other.locator("#connection")).to_have_text(SOCKET_SENTENCE, timeout=3_000)

    # A page loaded meanwhile: 503 and the sentence.
    loaded = context.new_page()
    refused = loaded.goto(session_url)
    assert refused is not None and refused.status == 503
    assert refused.headers["retry-after"] == "5"
    expect(loaded.get_by_role("alert")).to_have_text(SENTENCE)

    # The streaming tab: the words go on; the end cannot be saved, and the pane says so.
    status = streaming.locator("article[data-active] .status").first
    expect(status).to_contain_text(DATABASE_AWAY, timeout=8_000)

    time.sleep(max(0.0, AWAY_S - (time.monotonic() - (postgres.away_since or 0))))
    back = postgres.come_back()

    # The page loaded meanwhile, loaded again, shows the session.
    tries = 0
    while True:
        tries += 1
        answer = loaded.reload()
        if answer is not None and answer.status == 200:
            break
        assert time.monotonic() - back < 10, f"still {answer.status if answer else None}"
        time.sleep(0.1)
    page_again_s = time.monotonic() - back

    # Both answers whole, on every tab, each text shown on the way a beginning of them.
    assert whole_answers(streaming) == [ANSWER, ANSWER]
    ended_s = time.monotonic() - back
    assert whole_answers(loaded) == [ANSWER, ANSWER]
    assert whole_answers(other) == [ANSWER, ANSWER]
    expect(other.locator("#connection")).to_have_text("")
    assert len(sockets) >= 2  # the dropped tab reconnected by itself
    for rid, seen in context.texts.items():
        assert seen and all(ANSWER.startswith(text.strip()) for text in seen), rid
    saved = postgres.rows(
        "SELECT r.status, r.text FROM playground_response r"
        " JOIN playground_turn t ON t.id = r.turn_id WHERE t.session_id = %s",
        session_id,
    )
    assert saved == [("done", ANSWER), ("done", ANSWER)]
    print(
        f"\nPostgreSQL back: the page worked again after {page_again_s:.2f} s ({tries} "
        f"load(s)), both answers ended within {ended_s:.2f} s"
    )
    assert page_again_s < 5


def test_a_send_while_postgresql_is_away_keeps_the_prompt_and_says_why(
    postgres: Postgres, context: Any
) -> None:
    page = context.pages[0]
    start_two_echo_panes(page)
    whole_answers(page)
    prompt = page.get_by_label("Prompt")
    prompt.fill("Are you still there?")

    postgres.go_away()
    with page.expect_response(re.compile(r"/s/\d+/send/$")) as sent:
        page.get_by_role("button", name="Send").click()
    assert sent.value.status == 503
    expect(page.locator("#compose-errors")).to_have_text(SENTENCE)
    expect(prompt).to_have_value("Are you still there?")
    postgres.come_back()

    page.get_by_role("button", name="Send").click()
    expect(page.locator("#compose-errors")).to_have_text("")
    expect(prompt).to_have_value("")
    expect(page.locator("section.pane").first.locator("article")).to_have_count(2)
    assert postgres.rows("SELECT prompt FROM playground_turn ORDER BY id DESC LIMIT 1") == [
        ("Are you still there?",)
    ]
