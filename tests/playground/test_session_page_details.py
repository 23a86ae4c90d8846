"""Once an answer has ended, its pane shows everything about it: the parameters it was sent
with, its timings, its usage (estimated or not), its cost, its error and which key answered;
model output and what people typed stay text. The session page offers both exports.
Finished answers' HTML comes from the shared cache after the first render."""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from playground import rendering
from playground.models import Response, Status
from playground.pane_view import response_context
from tests.playground.helpers import article, make_turn, responses_of

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


class Tags(HTMLParser):
    """The elements and attributes a browser would make of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes += attrs


def ended(response: Response, **fields: Any) -> None:
    now = timezone.now()
    values: dict[str, Any] = {
        "status": Status.DONE,
        "text": "The answer",
        "finish_reason": "stop",
        "input_tokens": 512,
        "output_tokens": 64,
        "reasoning_tokens": 32,
        "usage_estimated": False,
        "ttft_ms": 250,
        "waited_ms": 1200,
        "total_ms": 3450,
        "tokens_per_s": 32.0,
        "cost": Decimal("0.0123"),
        "cost_currency": "USD",
        "key_scope": "team",
        "key_label": "team key 'research'",
        "started_at": now - timedelta(seconds=4),
        "finished_at": now,
    }
    values.update(fields)
    Response.objects.filter(pk=response.pk).update(**values)


def page_of(client: Any, session_id: int) -> str:
    answer = client.get(reverse("session", args=[session_id]))
    assert answer.status_code == 200
    return str(answer.content.decode())


def test_an_ended_answer_shows_its_parameters_timings_usage_cost_and_key(
    owner: Any, owner_client: Any
) -> None:
    turn = make_turn(
        owner,
        [("openai:gpt-4.1-mini", {"temperature": 0.7, "max_tokens": 300}), ("echo", {})],
        "Compare",
    )
    tuned, plain = responses_of(turn)
    ended(tuned)
    ended(
        plain,
        status=Status.ERROR,
        error="The provider said: rate limited.",
        reasoning_tokens=None,
        input_tokens=None,
        usage_estimated=True,
        cost=None,
        cost_currency="",
        key_scope="",
        key_label="",
        waited_ms=0,
    )

    page = page_of(owner_client, turn.session_id)

    shown = html.unescape(article(page, tuned.pk))
    assert (
        "Done · 64 tokens · TTFT 0.25 s · 32.0 tok/s · 3.45 s · waited 1.20 s · $0.0123 · "
        "team key 'research'</div>" in shown
    )
    assert "<dt>Parameters</dt> <dd>max tokens 300 · temperature 0.7</dd>" in shown
    assert "<dt>Usage</dt> <dd>512 in · 64 out · 32 reasoning tokens</dd>" in shown
    other = html.unescape(article(page, plain.pk))
    assert '<p class="error" role="alert">The provider said: rate limited.</p>' in other
    assert "<dt>Parameters</dt> <dd>model defaults</dd>" in other
    assert "<dt>Usage</dt> <dd>64 out tokens (estimated)</dd>" in other
    assert "waited" not in other and "key" not in other


def test_a_streaming_answer_shows_no_details_until_it_ends(
    owner: Any, owner_client: Any, clean_redis: Any
) -> None:
    """While it streams its status line is the live one (which the delta fragment replaces);
    the finished article, as the websocket sends it, brings the details."""
    turn = make_turn(owner, [("echo", {"temperature": 1.5})], "Go")
    (response,) = responses_of(turn)
    Response.objects.filter(pk=response.pk).update(status=Status.STREAMING)
    clean_redis.xadd(f"pg:log:{response.pk}", {"k": "d", "t": "Echo", "n": 1, "ms": 5}, id="0-1")
    clean_redis.set(f"pg:hb:{response.pk}", 1, ex=6)

    live = article(page_of(owner_client, turn.session_id), response.pk)
    assert 'data-active="1"' in live and "Parameters" not in live

    ended(response, text="Echo: Go")
    response.refresh_from_db()
    final = render_to_string(
        "playground/_response.html#oob-response", {"r": response_context(response, seq=3)}
    )
    assert 'hx-swap-oob="true"' in final
    assert "<dt>Parameters</dt> <dd>temperature 1.5</dd>" in final
    assert "<p>Echo: Go</p>" in final


def test_model_output_and_typed_text_stay_text_in_the_page(owner: Any, owner_client: Any) -> None:
    turn = make_turn(owner, [("echo", {"stop": [XSS], "user": XSS})], XSS)
    (response,) = responses_of(turn)
    ended(
        response,
        text=XSS + "\n\n[x](javascript:alert(3))",
        reasoning=XSS,
        error=XSS,
        display_name=XSS,
        key_label=XSS,
        tool_calls=[{"id": "c", "name": XSS, "arguments": XSS}],
        params={"stop": [XSS], "user": XSS},
    )

    page = page_of(owner_client, turn.session_id)

    shown = article(page, response.pk)
    assert shown
    tags = Tags()
    tags.feed(shown)
    assert tags.names.isdisjoint({"img", "script"})
    assert not [a for a in tags.attributes if a[0].startswith("on")]
    assert not [a for a in tags.attributes if (a[1] or "").startswith("javascript:")]
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in shown  # shown as the text it is


def test_the_session_page_offers_both_exports(owner: Any, owner_client: Any) -> None:
    turn = make_turn(owner, [("echo", {})], "Hi")

    page = page_of(owner_client, turn.session_id)

    md = reverse("export_md", args=[turn.session_id])
    js = reverse("export_json", args=[turn.session_id])
    assert f'<a href="{md}" download>Markdown (.md)</a>' in page
    assert f'<a href="{js}" download>JSON (.json)</a>' in page
    assert "Export" not in owner_client.get(reverse("home")).content.decode()


def test_a_finished_answer_is_rendered_once_then_read_from_the_shared_cache(
    owner: Any, owner_client: Any, clean_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    turn = make_turn(owner, [("echo", {}), ("echo", {})], "Hi")
    first, second = responses_of(turn)
    ended(first, text="# Title\n\n`code`")
    ended(second, text="# Title\n\n`code`")  # the same text: one entry
    page = page_of(owner_client, turn.session_id)
    assert "<h1>Title</h1>" in article(page, first.pk)
    assert len(list(clean_redis.scan_iter("pg:html:*"))) == 1
    assert clean_redis.ttl(rendering.html_key("# Title\n\n`code`")) > 6 * 24 * 3600

    def no_render(text: str) -> str:
        raise AssertionError("rendered again")

    monkeypatch.setattr(rendering, "render_markdown", no_render)
    again = page_of(owner_client, turn.session_id)
    assert article(again, first.pk) == article(page, first.pk)
    # Another text is another entry: the cache is by content, not by answer.
    Response.objects.filter(pk=second.pk).update(text="Other")
    with pytest.raises(AssertionError, match="rendered again"):
        page_of(owner_client, turn.session_id)


def test_the_cache_is_keyed_by_the_renderer_too() -> None:
    """HTML made under other sanitizing rules is never served: the key names this file's
    and its libraries' version."""
    key = rendering.html_key("text")
    assert key.startswith(f"pg:html:{rendering._RENDERER}:")
    assert key != rendering.html_key("text ")
