"""The real stack for end-to-end tests: daphne and Celery workers as child processes on the
test database and the run's Redis, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scripts.children import LOOPBACK, Child, start, start_on_free_port, stop_all

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# in between are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def database_url() -> str:
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgres://{auth}@{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"


@dataclass
class Stack:
    """Web processes (daphne) and workers (Celery) sharing one Redis and database."""

    env: dict[str, str]
    logs: Path
    web_urls: list[str] = field(default_factory=list)
    webs: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    started_workers: int = 0
    vendors: Any = None

    @property
    def url(self) -> str:
        return self.web_urls[0]

    def start_web(self) -> str:
        def launch(port: int) -> Child:
            argv = [sys.executable, "-m", "daphne", "-b", LOOPBACK, "-p", str(port),
                    "playground.asgi:application"]  # fmt: skip
            web = start(
                "daphne",
                argv,
                log=self.logs / f"daphne-{port}.log",
                cwd=ROOT,
                env=self.env,
                port=port,
                url=f"http://{LOOPBACK}:{port}",
            )
            return web.wait_for_port()

        web = start_on_free_port(launch)
        self.webs.append(web)
        self.web_urls.append(web.url)
        return web.url

    def start_worker(self) -> Child:
        self.started_workers += 1
        number = self.started_workers
        name = f"w{number}-{os.getpid()}@%h"
        worker = start(
            f"worker {number}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "playground",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "16",
                "--prefetch-multiplier",
                "1",
                "-n",
                name,
                "-l",
                "info",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            log=self.logs / f"worker-{number}.log",
            cwd=ROOT,
            env=self.env,
        )
        self.workers.append(worker.wait_for_log("ready."))
        return worker

    def wait_for_catalog(
        self, request: Any, offers: str = '<section class="pane"', timeout: float = 15
    ) -> None:
        """Wait until every web process's new comparison shows ``offers`` (by default, a
        pane: some model is offered).

        A web process reads a change to the catalog within catalog.CACHE_SECONDS, as for an
        admin's change. Tests change it: each test's teardown empties every table, the
        seeded catalog's too, and the next test puts the rows back; a web process whose
        copy was read in between offers no model until it reads again. (Production never
        empties that table under running processes.)"""
        deadline = time.monotonic() + timeout
        for url in self.web_urls:
            while True:
                body = request.get(url + "/").text()
                if offers in body:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url}/ does not offer {offers!r}:\n{body[-2000:]}")
                time.sleep(0.25)

    def stop_workers(self) -> None:
        stop_all(self.workers, timeout=15)
        self.workers.clear()

    def stop(self) -> None:
        stop_all([*self.webs, *self.workers])


def stack_env(tmp: Path, **extra: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        PLAYGROUND_VAULT_KEY=",".join(settings.PLAYGROUND_VAULT_KEYS),
        PLAYGROUND_VAR_DIR=str(tmp),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="playground.settings",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def stack(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[Stack]:
    """Two web processes and two workers, for the whole run."""
    tmp = tmp_path_factory.mktemp("stack")
    with django_db_blocker.unblock():
        env = stack_env(tmp)
    import redis

    # Tasks that earlier (non-e2e) tests enqueued for turns that no longer exist.
    redis.Redis.from_url(env["REDIS_URL"]).delete("celery")
    # The real local model (llama.cpp serving SmolLM2), as `make run` starts it.
    from scripts.local_model import start_local_model

    model = start_local_model(log_dir=tmp)
    env["PLAYGROUND_LOCAL_MODEL_URL"] = model.url
    # Four vendors' wire formats, served from recorded streams.
    from tests.e2e.vendors import Vendors

    vendors = Vendors()
    env.update(vendors.environment())
    # No sweep here: the fault tests run stacks of their own on their own Redis over this
    # same database, and this stack's sweep, seeing no heartbeat in its Redis for their
    # streaming panes, would end them "interrupted" (in a real site every worker shares one
    # Redis). Those stacks sweep, and their tests show it.
    env["PLAYGROUND_SWEEP_SECONDS"] = "0"
    running = Stack(env, tmp, vendors=vendors)
    try:
        running.start_web()
        running.start_web()
        running.start_worker()
        running.start_worker()
        yield running
    finally:
        running.stop()
        model.stop()
        vendors.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # What a page must show, it must show within 10 s (Playwright's default is 5 s): CI
    # machines are shared and noisy. Tests that assert a user-visible time (Stop within a
    # second) set their own, shorter timeout.
    expect.set_options(timeout=10_000)

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def e2e_user(transactional_db: Any, django_user_model: Any) -> Any:
    from tests.conftest import PASSWORD

    return django_user_model.objects.create_user("erin", "erin@example.com", PASSWORD)


@pytest.fixture
def page(browser: Any, stack: Stack, e2e_user: Any, clean_redis: Any) -> Iterator[Any]:
    """A signed-in browser page on the first web process."""
    from tests.conftest import PASSWORD

    context = browser.new_context(base_url=stack.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(e2e_user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
    stack.wait_for_catalog(context.request)
    yield page
    context.close()
