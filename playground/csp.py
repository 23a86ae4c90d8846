"""The Content-Security-Policy every response carries (Django 5.2 has none of its own).

Scripts run only from this site's own files, and an inline script only with the nonce made
for its one response (``request.csp_nonce``; templates put it on every ``<script>``); no
inline event handlers, no ``eval`` (htmx is told not to use it, templates/base.html), no
inline styles, no images from elsewhere, no plugins, no framing, forms and connections
(the websocket included) to this site only. So markup that got past the sanitizer into a
page, an answer's say, can neither run nor send anything anywhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"


def policy(nonce: str) -> str:
    """The policy of a response whose inline scripts carry ``nonce``."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            # 'self' covers ws:// and wss:// to this host (CSP level 3): the live panes.
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy(nonce)
        return response


def csp_nonce(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``csp_nonce`` for templates' ``<script nonce="…">``."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
