"""What the templates are given for a pane and a response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from playground.catalog import CatalogModel
from playground.key_picker import KeyPicker, PaneKeys
from playground.live import response_log
from playground.models import Response, Status
from playground.rendering import answer_html
from playground.templatetags.playground import param_words, usage_words
from providers.base import Param


@dataclass
class ParamField:
    param: Param
    name: str  # form field name
    value: Any
    field_id: str


@dataclass
class PaneView:
    position: int
    pane_id: int | None
    model_key: str
    model: CatalogModel | None
    fields: list[ParamField]
    responses: list[dict[str, Any]] = field(default_factory=list)
    key_picker: KeyPicker | None = None  # the pane's Key select (playground.key_picker)
    joins: str = ""  # what a model added to a running conversation sees of it

    @property
    def display_name(self) -> str:
        if self.model is not None:
            return self.model.display_name
        if self.responses:  # a model no longer offered: the name its answers were given
            return str(self.responses[-1]["display_name"])
        return self.model_key

    @property
    def temperature(self) -> ParamField | None:
        return next((f for f in self.fields if f.param.name == "temperature"), None)

    @property
    def more_fields(self) -> list[ParamField]:
        return [f for f in self.fields if f.param.name != "temperature"]


def param_fields(
    position: int, model: CatalogModel | None, values: dict[str, Any]
) -> list[ParamField]:
    if model is None:
        return []
    merged = {**model.defaults, **values}
    return [
        ParamField(
            p,
            f"pane-{position}-p-{p.name}",
            _display(merged.get(p.name)),
            f"pane-{position}-{p.name}",
        )
        for p in model.params
    ]


def _display(value: Any) -> Any:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else value


def pane_view(
    position: int,
    model_key: str,
    values: dict[str, Any],
    models: dict[str, CatalogModel],
    pane_id: int | None = None,
    keys: PaneKeys | None = None,
    picked_key: int | None = None,
    keep_lost_key: bool = True,
) -> PaneView:
    """A pane as the templates show it; ``models``: what the person may pick
    (``endpoints.models_for_user``); ``keys``: the keys they may pick
    (``PaneKeys.load``, once per page), and ``picked_key`` the one picked for the pane."""
    model = models.get(model_key)
    picker = (keys or PaneKeys.none()).picker(model, picked_key, keep_lost_key)
    fields = param_fields(position, model, values)
    return PaneView(position, pane_id, model_key, model, fields, key_picker=picker)


def attached(tools: list[Any], images: list[Any], media: list[Any] | None = None) -> str:
    """What the turn carried besides its prompt, in a few words."""
    parts = []
    if images:
        parts.append(f"{len(images)} image{'s' if len(images) != 1 else ''}")
    for kind, word in (("video", "video"), ("audio", "recording")):
        count = sum(1 for m in media or [] if m.get("kind") == kind)
        if count:
            parts.append(f"{count} {word}{'s' if count != 1 else ''}")
    if tools:
        names = ", ".join(str(t.get("name", "")) for t in tools[:4])
        parts.append(f"tools: {names}{' …' if len(tools) > 4 else ''}")
    return " · ".join(parts)


def media_view(turn_id: int, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the history shows of a turn's videos and recordings: a player for a kept file,
    a strip of thumbnails for frames, the address of one given by URL. The links are
    relative ("media/…"), so that the owner's page and a share link's page each reach them
    through their own access check."""
    shown = []
    for n, entry in enumerate(entries):
        view = {"kind": entry.get("kind"), "form": entry.get("form"), "name": entry.get("name", "")}
        if entry.get("form") == "file":
            view["src"] = f"media/{turn_id}/{n}/"
            view["mime_type"] = entry.get("mime_type", "")
        elif entry.get("form") == "frames":
            view["frames"] = [
                f"media/{turn_id}/{n}/frame/{k}/" if "data" in f else ""
                for k, f in enumerate(entry.get("frames", []))
            ]
        else:
            view["url"] = entry.get("url", "")
        shown.append(view)
    return shown


def response_context(
    response: Response,
    seq: int = 0,
    live: response_log.Batch | None = None,
    shared: bool = False,
    html: str | None = None,
) -> dict[str, Any]:
    """A response as the templates show it. ``live`` is what its log holds so far;
    ``shared``: shown through a share link, to someone who is not necessarily its owner
    (no names of the owner's keys, no controls); ``html``: a finished answer's HTML when
    the caller has it (``rendering.answers_html`` for many at once)."""
    active = response.status in (Status.PENDING, Status.STREAMING)
    text = live.text if (active and live) else response.text
    safe: SafeString | str = ""
    details: dict[str, str] = {}
    if not active:
        if html is None:
            html = answer_html(response.text)
        safe = mark_safe(html)  # noqa: S308 - sanitized by nh3 (playground.rendering)
        # Once ended, what it was asked with and what it used, beside the status line.
        details = {
            "params": param_words(response.params),
            "usage": usage_words(
                response.input_tokens,
                response.output_tokens,
                response.reasoning_tokens,
                response.usage_estimated,
            ),
        }
    return {
        "id": response.pk,
        "position": response.pane.position,
        "display_name": response.display_name,
        "prompt": response.turn.prompt,
        "attached": attached(response.turn.tools, response.turn.images, response.turn.media),
        "media": media_view(response.turn_id, response.turn.media),
        "turn_index": response.turn.index,
        "status": response.status,
        "status_label": response.get_status_display(),
        "active": active,
        "text": text,
        "html": safe,
        "details": details,
        "reasoning": live.reasoning if (active and live) else response.reasoning,
        "tool_calls": response.tool_calls,
        "finish_reason": response.finish_reason,
        "error": response.error,
        "seq": live.last_seq if live else seq,
        "message": live.message if live else None,
        "tokens": live.tokens if live else response.output_tokens,
        "elapsed_ms": live.elapsed_ms if live else response.total_ms,
        "ttft_ms": live.ttft_ms if live else response.ttft_ms,
        "waited_ms": live.waited_ms if live else response.waited_ms,
        "session_id": response.turn.session_id,
        "replaced": response.replaced,
        "excluded": response.excluded,
        "chosen": response.turn.chosen_id == response.pk,
        "shared": shared,
        "r": response,
    }
