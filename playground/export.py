"""A session as a file: Markdown to read, JSON with everything for tools (docs/export.md,
its schema docs/session-export.schema.json).

One module builds both, for the owner's downloads (``/s/<id>/export.md|json``) and for a
share link's (``export_response(..., for_viewer=True)``). What never goes in, whoever
asks: a key, a credential's id, anyone's email, image bytes (an image is its type and
size, or its URL), what a quota reserved. A viewer's export also says only whose kind of
key answered ("team key"), not its label.

Answers a later one replaced (Regenerate, Retry) are left out: an export holds each pane's
answer to each turn, as the page shows it. An answer still streaming is exported with what
its log holds so far, as status "streaming".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify

from playground.catalog import catalog
from playground.live import response_log
from playground.models import ContextPolicy, Pane, Response, Session, Status, Turn
from playground.redis_sync import redis_client
from playground.templatetags.playground import money, param_words, timing_words, usage_words

SCHEMA = "playground.session-export/1"

# What a viewer reads instead of the owner's words for a key ("your key 'work'").
SCOPE_WORDS = {
    "user": "personal key",
    "team": "team key",
    "org": "site key",
    "env": "site environment",
}
ENDPOINT_SCOPE_WORDS = {"user": "personal endpoint", "team": "team endpoint"}


@dataclass
class SessionRecord:
    """What an export is made of, read once: the rows, and the logs of answers that are
    still streaming."""

    session: Session
    panes: list[Pane]
    turns: list[Turn]
    responses: dict[int, list[Response]]  # by turn id, in pane order
    live: dict[int, response_log.Batch]  # by response id: answers still streaming
    pane_names: dict[int, str]
    exported_at: datetime


def read_session(session: Session) -> SessionRecord:
    """Every pane (removed ones too: their answers stay on record), every turn, and each
    turn's answers but those a later one replaced."""
    panes = list(session.panes.order_by("position", "pk"))
    turns = list(session.turns.order_by("index"))
    rows = list(
        Response.objects.filter(turn__session=session, replaced=False)
        .defer("reserved_tokens", "reserved_cost", "quota_counters", "credential")
        .order_by("turn__index", "pane__position", "pane_id")
    )
    live = _live_logs(rows)
    by_turn: dict[int, list[Response]] = {t.pk: [] for t in turns}
    names: dict[int, str] = {}
    for r in rows:
        by_turn.setdefault(r.turn_id, []).append(r)
        names[r.pane_id] = r.display_name  # the latest answer's name of its model
    models = catalog()
    for p in panes:
        if p.pk not in names:
            model = models.get(p.model_key)
            names[p.pk] = model.display_name if model else p.model_key
    return SessionRecord(session, panes, turns, by_turn, live, names, timezone.now())


def _live_logs(rows: list[Response]) -> dict[int, response_log.Batch]:
    """What the logs of streaming answers hold so far. One that ended meanwhile is read
    again: whoever ends an answer writes its row before its log's end entry."""
    active = [r for r in rows if r.status == Status.STREAMING]
    if not active:
        return {}
    with redis_client().pipeline(transaction=False) as pipe:
        for r in active:
            pipe.xrange(response_log.log_key(r.pk))
        logs = pipe.execute()
    live = {}
    for r, entries in zip(active, logs, strict=True):
        batch = response_log.merge(entries)
        if batch.ended:
            r.refresh_from_db()
        else:
            live[r.pk] = batch
    return live


# ----------------------------------------------------------------------------- JSON


def as_json(record: SessionRecord, *, for_viewer: bool) -> dict[str, Any]:
    """The whole session as plain JSON values (docs/session-export.schema.json)."""
    s = record.session
    return {
        "schema": SCHEMA,
        "exported_at": _when(record.exported_at),
        "session": {
            "id": s.pk,
            "title": str(s),
            "system_prompt": s.system_prompt,
            "context_policy": s.context_policy,
            "created_at": _when(s.created_at),
            "updated_at": _when(s.updated_at),
            "forked_from": None if for_viewer else s.forked_from_id,
            "forked_at_turn": s.forked_at_turn,
        },
        "panes": [
            {
                "id": p.pk,
                "position": p.position,
                "model_key": p.model_key,
                "display_name": record.pane_names[p.pk],
                "params": p.params,
                "removed": p.removed,
            }
            for p in record.panes
        ],
        "turns": [
            {
                "index": t.index,
                "created_at": _when(t.created_at),
                "prompt": t.prompt,
                "system_prompt": t.system_prompt,
                "tools": t.tools,
                "images": [image_reference(i) for i in t.images],
                "media": [media_reference(m) for m in t.media],
                "responses": [
                    _response_json(r, record, t, for_viewer) for r in record.responses.get(t.pk, [])
                ],
            }
            for t in record.turns
        ],
    }


def _response_json(
    r: Response, record: SessionRecord, turn: Turn, for_viewer: bool
) -> dict[str, Any]:
    batch = record.live.get(r.pk)
    text, reasoning = (batch.text, batch.reasoning) if batch is not None else (r.text, r.reasoning)
    return {
        "id": r.pk,
        "pane_id": r.pane_id,
        "model_key": r.model_key,
        "display_name": r.display_name,
        "params": r.params,
        "status": r.status,
        "text": text,
        "reasoning": reasoning,
        "tool_calls": [
            {
                "id": str(c.get("id", "")),
                "name": str(c.get("name", "")),
                "arguments": str(c.get("arguments", "")),
            }
            for c in r.tool_calls
        ],
        "finish_reason": r.finish_reason,
        "error": r.error,
        "usage": {
            "input_tokens": r.input_tokens,
            # While it streams, the count so far is the log's own estimate.
            "output_tokens": batch.tokens if batch is not None else r.output_tokens,
            "reasoning_tokens": r.reasoning_tokens,
            "estimated": batch is not None or r.usage_estimated,
        },
        "cost": None if r.cost is None else str(r.cost),
        "currency": r.cost_currency or None,
        "timings": {
            "ttft_ms": batch.ttft_ms if batch is not None else r.ttft_ms,
            "waited_ms": batch.waited_ms if batch is not None else r.waited_ms,
            "total_ms": r.total_ms,
            "elapsed_ms": batch.elapsed_ms if batch is not None else r.total_ms,
            "tokens_per_s": r.tokens_per_s,
            "started_at": _when(r.started_at),
            "finished_at": _when(r.finished_at),
        },
        "key": key_words(r, for_viewer=for_viewer),
        "chosen": turn.chosen_id == r.pk,
        "excluded": r.excluded,
    }


def key_words(r: Response, *, for_viewer: bool) -> dict[str, str] | None:
    """Which key answered, in words; None when none did (a keyless model, or the answer
    never reached its call). The owner reads what their pane said ("your key 'work'"), a
    viewer only its kind ("personal key")."""
    if not r.key_scope or not r.started_at:
        return None
    endpoint = r.model_key.startswith("mine:")
    words = (ENDPOINT_SCOPE_WORDS if endpoint else SCOPE_WORDS).get(r.key_scope, "")
    says = words if for_viewer or not r.key_label else r.key_label
    return {"scope": r.key_scope, "says": says}


def image_reference(image: dict[str, Any]) -> dict[str, Any]:
    """An image as the export names it: its URL, or an upload's type and size in bytes
    (never the bytes themselves)."""
    if image.get("url"):
        return {"url": str(image["url"])}
    data = str(image.get("data", ""))
    padding = len(data) - len(data.rstrip("="))
    size = len(data) * 3 // 4 - padding if data else 0
    return {"mime_type": str(image.get("mime_type", "")), "bytes": size}


def media_reference(entry: dict[str, Any]) -> dict[str, Any]:
    """A video or recording as the export names it: its URL, an upload's name, type, size
    and length, or its frames as images are named (never the bytes themselves)."""
    ref: dict[str, Any] = {"kind": entry.get("kind"), "form": entry.get("form")}
    if entry.get("form") == "url":
        ref["url"] = str(entry.get("url", ""))
    elif entry.get("form") == "frames":
        ref["frames"] = [image_reference(f) for f in entry.get("frames", [])]
    else:
        for name in ("name", "mime_type", "size", "seconds"):
            ref[name] = entry.get(name)
    return ref


def _media_words(entry: dict[str, Any]) -> str:
    what = "video" if entry.get("kind") == "video" else "recording"
    if entry.get("form") == "url":
        return f"{what} <{entry.get('url', '')}>"
    if entry.get("form") == "frames":
        return f"{what} of {len(entry.get('frames', []))} frames"
    seconds = entry.get("seconds")
    length = f", {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    size = entry.get("size", 0)
    return f"{what} {entry.get('name', '')} ({entry.get('mime_type', '')}, {size:,} bytes{length})"


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


# ------------------------------------------------------------------------- Markdown


def as_markdown(record: SessionRecord, *, for_viewer: bool) -> str:
    """The session to read: a heading per turn, the prompt, then each pane's answer in
    pane order with its numbers; reasoning and tool calls in blocks of their own."""
    s = record.session
    lines = [f"# {_one_line(str(s))}", ""]
    lines.append(f"- Created: {_day(s.created_at)}; exported {_day(record.exported_at)}")
    lines.append(f"- Context: {ContextPolicy(s.context_policy).label}")
    lines.append("- Models:")
    for p in record.panes:
        gone = " (removed)" if p.removed else ""
        lines.append(
            f"  - Pane {p.position + 1}: {record.pane_names[p.pk]} (`{p.model_key}`){gone}"
            f" — {param_words(p.params)}"
        )
    if s.system_prompt:
        lines += ["", "**System prompt**", "", _quoted(s.system_prompt)]
    for turn in record.turns:
        lines += ["", f"## Turn {turn.index + 1}", "", f"*{_day(turn.created_at)}*", ""]
        lines += [_quoted(turn.prompt)]
        if turn.system_prompt and turn.system_prompt != s.system_prompt:
            lines += ["", "System prompt:", "", _quoted(turn.system_prompt)]
        if turn.tools:
            names = ", ".join(f"`{t.get('name', '')}`" for t in turn.tools)
            lines += ["", f"Tools offered: {names}"]
        if turn.images:
            lines += ["", "Images: " + "; ".join(_image_words(i) for i in turn.images)]
        if turn.media:
            lines += ["", "Video and audio: " + "; ".join(_media_words(m) for m in turn.media)]
        for r in record.responses.get(turn.pk, []):
            lines += ["", *_response_markdown(r, record, turn, for_viewer)]
    return "\n".join(lines).rstrip() + "\n"


def _response_markdown(
    r: Response, record: SessionRecord, turn: Turn, for_viewer: bool
) -> list[str]:
    batch = record.live.get(r.pk)
    text, reasoning = (batch.text, batch.reasoning) if batch is not None else (r.text, r.reasoning)
    position = next((p.position for p in record.panes if p.pk == r.pane_id), 0)
    chosen = " — chosen" if turn.chosen_id == r.pk else ""
    excluded = " — excluded from context" if r.excluded else ""
    lines = [f"### Pane {position + 1}: {_one_line(r.display_name)}{chosen}{excluded}", ""]
    status = r.get_status_display()
    if batch is not None:
        status += " (what had arrived when exported)"
    if r.finish_reason and r.finish_reason != r.status:
        status += f", finish: {r.finish_reason}"
    lines.append(f"- Model: `{r.model_key}`")
    lines.append(f"- Parameters: {param_words(r.params)}")
    lines.append(f"- Status: {status}")
    if batch is not None:
        usage = usage_words(None, batch.tokens, None, True)
        timings = timing_words(batch.ttft_ms, None, None, batch.waited_ms)
    else:
        usage = usage_words(r.input_tokens, r.output_tokens, r.reasoning_tokens, r.usage_estimated)
        timings = timing_words(r.ttft_ms, r.total_ms, r.tokens_per_s, r.waited_ms)
    if usage:
        lines.append(f"- Tokens: {usage}")
    if r.cost is not None:
        lines.append(f"- Cost: {money(r.cost, r.cost_currency)} ({r.cost} {r.cost_currency})")
    if timings:
        lines.append(f"- Timings: {timings}")
    key = key_words(r, for_viewer=for_viewer)
    if key:
        lines.append(f"- Key: {key['says']}")
    if r.error:
        lines.append(f"- Error: {_one_line(r.error)}")
    if reasoning:
        lines += ["", "#### Reasoning", "", _fenced(reasoning, "text")]
    if r.tool_calls:
        lines += ["", "#### Tool calls"]
        for call in r.tool_calls:
            lines += [
                "",
                f"`{call.get('name', '')}` (id `{call.get('id', '')}`):",
                "",
                _fenced(_pretty(str(call.get("arguments", ""))), "json"),
            ]
    lines += ["", "#### Answer", "", text.strip() or "*(no text)*"]
    return lines


def _image_words(image: dict[str, Any]) -> str:
    ref = image_reference(image)
    if "url" in ref:
        return f"<{ref['url']}>"
    return f"{ref['mime_type']}, {ref['bytes']:,} bytes"


def _pretty(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def _fenced(text: str, lang: str) -> str:
    """A code block that no run of backticks in ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- HTTP


def filename(session: Session, fmt: str) -> str:
    """A file name from the title that is safe everywhere: letters, digits, dashes."""
    stem = slugify(str(session.title))[:60].strip("-") or f"session-{session.pk}"
    return f"{stem}.{fmt}"


def export_response(session: Session, fmt: str, *, for_viewer: bool) -> HttpResponse:
    """The download of ``session`` as ``fmt`` ("md" or "json"; anything else is missing).
    The caller has checked access: the owner's views through ``access.session_for_user``,
    a share link's through its own check."""
    if fmt not in ("md", "json"):
        raise Http404("No such export.")
    record = read_session(session)
    if fmt == "md":
        body = as_markdown(record, for_viewer=for_viewer)
        content_type = "text/markdown; charset=utf-8"
    else:
        body = json.dumps(as_json(record, for_viewer=for_viewer), ensure_ascii=False, indent=1)
        content_type = "application/json"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=filename(session, fmt)
    )
    response["Cache-Control"] = "private, no-store"
    return response


__all__ = ["SCHEMA", "as_json", "as_markdown", "export_response", "read_session"]
