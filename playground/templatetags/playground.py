"""Small formatting helpers for panes: status lines and tool-call arguments."""

from __future__ import annotations

import json
from collections.abc import Collection
from decimal import Decimal
from html import escape as html_escape  # what Django's escape calls, less a SafeString
from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from playground.live.response_log import Batch
from playground.models import Scope
from playground.usage import tokens_per_second

register = template.Library()


class Stamp:
    """A template partial rendered once with a marker in place of each value, then filled by
    plain substitution, each value escaped as the template escapes it. The HTML stays in
    the template; filling one costs what an f-string does: the delta fragment goes out many
    times a second per streaming pane (5 µs filled, 47 µs rendered by the template), and a
    page's Model pickers hold an option per model per pane.

    A value that is None, False or empty is given to the template as it is (so its ``if``
    takes the other branch); each such set of values is one variant, rendered once.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._variants: dict[tuple[str, ...], list[Any]] = {}

    def fill(self, **values: Any) -> str:
        absent = tuple([k for k, v in values.items() if v is None or v is False or v == ""])
        pieces = self._variants.get(absent)
        if pieces is None:
            pieces = self._variants[absent] = self._render(values, absent)
        *pairs, last = pieces
        return "".join([text + html_escape(str(values[key])) for text, key in pairs]) + last

    def _render(self, values: dict[str, Any], absent: tuple[str, ...]) -> list[Any]:
        """The variant as (text, key) pairs and the closing text."""
        context = {k: (v if k in absent else f"\x00{k}\x00") for k, v in values.items()}
        parts = render_to_string(self.name, context).split("\x00")
        return [*zip(parts[0:-1:2], parts[1::2], strict=True), parts[-1]]


def _seconds(ms: int | None) -> str:
    return "" if ms is None else f"{ms / 1000:.2f} s"


def _rate(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.1f} tok/s"


def _waited(ms: int | None) -> str:
    """Time a pane waited for its endpoint or rate limit before the call, when it did."""
    return f"waited {_seconds(ms)}" if ms else ""


def _tokens(count: int | None) -> str:
    return "" if count is None else f"{count} token{'' if count == 1 else 's'}"


def _join(parts: list[str]) -> str:
    return " · ".join(p for p in parts if p)


@register.simple_tag
def live_status(batch: Batch) -> str:
    """The status line of a streaming pane, from what its log said last."""
    if batch.message:
        return batch.message
    tokens = _tokens(batch.tokens)
    ttft = f"TTFT {_seconds(batch.ttft_ms)}" if batch.ttft_ms is not None else ""
    return _join(
        [
            "Streaming",
            tokens,
            ttft,
            _rate(
                tokens_per_second(batch.tokens, batch.ttft_ms, batch.elapsed_ms, batch.waited_ms)
            ),
            _seconds(batch.elapsed_ms),
            _waited(batch.waited_ms),
        ]
    )


@register.simple_tag
def response_status(r: dict[str, Any]) -> str:
    response = r["r"]
    if r["active"]:
        if r.get("message"):
            return str(r["message"])
        if r["status"] == "pending":
            return "Queued"
        batch = Batch(
            tokens=r["tokens"],
            ttft_ms=r["ttft_ms"],
            elapsed_ms=r["elapsed_ms"],
            waited_ms=r["waited_ms"],
        )
        return live_status(batch)
    tokens = _tokens(response.output_tokens)
    if tokens and response.usage_estimated:
        tokens += " (estimated)"
    ttft = f"TTFT {_seconds(response.ttft_ms)}" if response.ttft_ms is not None else ""
    rate = _rate(response.tokens_per_s or None)
    cost = money(response.cost, response.cost_currency)
    if cost and response.usage_estimated:
        cost = "≈ " + cost
    finish = ""
    if response.finish_reason and response.finish_reason not in {"stop", response.status}:
        finish = f"finish: {response.finish_reason}"
    total = _seconds(response.total_ms)
    waited = _waited(response.waited_ms)
    # Which key answered: "your key 'work'", "team key 'research'", "site environment";
    # through a share link, whose key it was but never its name.
    key = ""
    if response.started_at:
        key = shared_key_words(response) if r.get("shared") else response.key_label
    return _join([r["status_label"], tokens, ttft, rate, total, waited, cost, finish, key])


def shared_key_words(response: Any) -> str:
    """Whose key answered, for a share link's viewer: the kind of key, never its label
    (a person's key names are theirs), nor the name of the owner's endpoint."""
    endpoint = response.model_key.startswith("mine:")
    return {
        Scope.USER: "owner's endpoint" if endpoint else "owner's key",
        Scope.TEAM: "team endpoint" if endpoint else "team key",
        Scope.ORG: "site key",
        Scope.ENV: "site environment",
    }.get(response.key_scope, "")


def param_words(params: dict[str, Any] | None) -> str:
    """The parameters an answer was asked with, as the pane and the Markdown export say
    them: "max tokens 256 · temperature 0.7" (by name: PostgreSQL keeps no order of its
    own); "model defaults" when none was set."""
    parts = []
    for name, value in sorted((params or {}).items()):
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            shown = "on" if value else "off"
        elif isinstance(value, float):
            shown = format(value, "g")  # 0.7, not 0.7000000000000001
        elif isinstance(value, list | dict):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = str(value)
        parts.append(f"{name.replace('_', ' ')} {shown}")
    return _join(parts) or "model defaults"


def usage_words(
    input_tokens: int | None,
    output_tokens: int | None,
    reasoning_tokens: int | None,
    estimated: bool,
) -> str:
    """ "500 in · 400 out · 120 reasoning tokens (estimated)"; empty when nothing is known."""
    parts = [
        f"{count} {what}"
        for count, what in (
            (input_tokens, "in"),
            (output_tokens, "out"),
            (reasoning_tokens, "reasoning"),
        )
        if count is not None
    ]
    if not parts:
        return ""
    return _join(parts) + " tokens" + (" (estimated)" if estimated else "")


def timing_words(
    ttft_ms: int | None, total_ms: int | None, tokens_per_s: float | None, waited_ms: int | None
) -> str:
    """ "TTFT 0.30 s · total 4.00 s · 95.5 tok/s · waited 1.50 s"."""
    return _join(
        [
            f"TTFT {_seconds(ttft_ms)}" if ttft_ms is not None else "",
            f"total {_seconds(total_ms)}" if total_ms is not None else "",
            _rate(tokens_per_s or None),
            _waited(waited_ms),
        ]
    )


_SYMBOLS = {"USD": "$", "CNY": "¥", "EUR": "€"}


def money(amount: Decimal | None, currency: str) -> str:
    """A small amount readable at a glance: $0.0123, ¥0.45, $0 for free models."""
    if amount is None:
        return ""
    symbol = _SYMBOLS.get(currency, currency + " ")
    if amount == 0:
        return f"{symbol}0"
    digits = 2 if amount >= 1 else 4 if amount >= Decimal("0.0001") else 6
    return f"{symbol}{amount:.{digits}f}"


@register.filter
def pretty_json(value: str) -> str:
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return value


@register.simple_tag
def model_options(
    models: list[Any], selected: str, selected_name: str = "", keyed: Collection[str] = ()
) -> SafeString:
    """The <option>s of a pane's Model picker, each a stamp of ``_pane.html#model-option``:
    a template loop was half of the page's render time (four panes, 24 models: 2.7 of
    4.9 ms).

    A pane's model that is no longer offered (its endpoint deleted, its catalog entry
    disabled) stays selected, marked as such: otherwise the browser would select the first
    model, and the next Send would quietly ask another model. Send refuses it instead.

    ``keyed``: the models a saved key of the person answers for (``PaneKeys.keyed``); they
    are offered even when the site has no key of its own for them."""
    options = []
    keyed = keyed or ()
    if selected and all(m.key != selected for m in models):
        name = f"{selected_name or selected} (no longer available)"
        options.append(_OPTION.fill(key=selected, name=name, selected=True, missing=""))
    for m in models:
        options.append(
            _OPTION.fill(
                key=m.key,
                name=m.display_name,
                selected=m.key == selected,
                missing="" if m.key in keyed else m.needs,
            )
        )
    return mark_safe("\n".join(options))  # noqa: S308 - filled from the template, escaped


_OPTION = Stamp("playground/_pane.html#model-option")


@register.simple_tag
def media_limits() -> str:
    """What the composer says of videos and recordings before anyone picks a file."""
    from playground.media import limits_sentence

    return limits_sentence()
