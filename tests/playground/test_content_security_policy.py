"""Every response carries a strict Content-Security-Policy (playground/csp.py) with a nonce
made for it alone, which every <script> of the page carries; and nothing in the templates
needs more than that policy allows: no inline script, handler or style, no htmx feature
that evaluates code. The browser test (tests/e2e/test_pages_under_csp.py) loads the
pages in chromium and counts violations."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.playground.helpers import make_turn

ROOT = Path(__file__).resolve().parents[2]


def directives(policy: str) -> dict[str, list[str]]:
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {words[0]: words[1:] for words in parts}


class Scripts(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


@pytest.mark.django_db
def test_every_page_has_the_policy_and_its_scripts_its_nonce(
    owner: Any, owner_client: Client
) -> None:
    turn = make_turn(owner, [("echo", {})], "Hello")
    pages = [
        reverse("home"),
        reverse("session", args=[turn.session_id]),
        reverse("keys"),
        reverse("teams"),
        reverse("usage"),
        reverse("sets"),
        reverse("endpoints"),
    ]
    nonces = set()
    for url in pages:
        response = owner_client.get(url)
        assert response.status_code == 200, url
        policy = directives(response["Content-Security-Policy"])
        [nonce] = [s for s in policy["script-src"] if s.startswith("'nonce-")]
        nonces.add(nonce)
        assert policy == {
            "default-src": ["'self'"],
            "script-src": ["'self'", nonce],
            "style-src": ["'self'"],
            "img-src": ["'self'", "data:"],
            "connect-src": ["'self'"],
            "object-src": ["'none'"],
            "base-uri": ["'none'"],
            "frame-ancestors": ["'none'"],
            "form-action": ["'self'"],
        }, url
        scripts = Scripts(response.content.decode()).scripts
        assert scripts, url
        assert all(f"'nonce-{s['nonce']}'" == nonce for s in scripts), (url, scripts)
    assert len(nonces) == len(pages)  # a nonce per response, never reused


def test_the_sign_in_page_and_a_not_found_page_carry_it_too(client: Client) -> None:
    for url, status in [("/login/", 200), ("/shared/nothing-here/", 404)]:
        response = client.get(url)
        assert response.status_code == status
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "script-src 'self' 'nonce-" in response["Content-Security-Policy"]


TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
# What the policy refuses, or htmx would need eval or inline <style> for.
REFUSED = {
    "inline event handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "inline script": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "hx-on": re.compile(r"\shx-on[:-]", re.IGNORECASE),
    "hx-vals or hx-vars with js:": re.compile(r"hx-va(?:ls|rs)\s*=\s*['\"]\s*(?:js|javascript):"),
    "hx-trigger with a filter": re.compile(r"hx-trigger\s*=\s*['\"][^'\"]*\["),
}


@pytest.mark.parametrize("template", TEMPLATES, ids=[str(t.relative_to(ROOT)) for t in TEMPLATES])
def test_templates_need_nothing_the_policy_refuses(template: Path) -> None:
    text = template.read_text()
    for what, pattern in REFUSED.items():
        assert not pattern.search(text), f"{what} in {template.relative_to(ROOT)}"


def test_htmx_is_told_to_evaluate_nothing_and_add_no_style() -> None:
    base = (ROOT / "templates/base.html").read_text()

    assert (
        """<meta name="htmx-config" content='{"allowEval": false, "allowScriptTags": false,"""
        """ "includeIndicatorStyles": false}'>"""
    ) in base
    css = (ROOT / "static/playground/app.css").read_text()
    assert ".htmx-indicator { opacity: 0; }" in css  # its indicator, without its <style>


def test_our_scripts_evaluate_no_strings() -> None:
    for path in sorted((ROOT / "static/playground").glob("*.js")):
        text = path.read_text()
        assert not re.search(r"\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*['\"]", text)
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, path
