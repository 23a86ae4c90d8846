"""What a turn can carry besides its prompt: tool definitions (pasted as JSON, once for the
turn) and images (uploaded, or given by https URL). Every problem is a sentence."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from providers.base import ImagePart, ToolSpec

MAX_TOOLS = 32
MAX_TOOLS_CHARS = 64_000
MAX_TOOLS_DEPTH = 32  # arrays and objects within each other, the list of tools included
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The formats every vision API here accepts, recognised by their first bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class AttachmentError(ValueError):
    pass


def parse_tools(text: str) -> list[dict[str, Any]]:
    """Tool definitions from pasted JSON: a list (or one object) in OpenAI's shape
    (``{"type": "function", "function": {...}}``), Anthropic's (``input_schema``) or bare
    (``{"name", "description", "parameters"}``). Returns them normalized to the bare shape."""
    if not text.strip():
        return []
    if len(text) > MAX_TOOLS_CHARS:
        raise AttachmentError(
            f"The tool definitions are longer than {MAX_TOOLS_CHARS:,} characters."
        )
    if _nesting(text, MAX_TOOLS_DEPTH) > MAX_TOOLS_DEPTH:
        # Said before parsing: Python's JSON parser recurses once per level, and a few
        # thousand "[" would raise RecursionError instead of a sentence.
        raise AttachmentError(
            f"The tool definitions are nested more than {MAX_TOOLS_DEPTH} levels deep; "
            "flatten their parameters' schemas."
        )
    try:
        value = json.loads(text)
    except ValueError as error:
        raise AttachmentError(
            f"The tool definitions are not valid JSON (line {getattr(error, 'lineno', '?')}, "
            f"column {getattr(error, 'colno', '?')})."
        ) from None
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_TOOLS:
        raise AttachmentError(f"Give at most {MAX_TOOLS} tools.")
    tools: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict) and isinstance(item.get("function"), dict):
            item = item["function"]
        if not isinstance(item, dict):
            raise AttachmentError(f"Tool {number} is not a JSON object.")
        name = item.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise AttachmentError(
                f"Tool {number} needs a name of letters, digits, _ or - (at most 64)."
            )
        schema = item.get("parameters", item.get("input_schema", {"type": "object"}))
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise AttachmentError(f'Tool {name}: "parameters" must be a JSON Schema object.')
        description = item.get("description", "")
        if not isinstance(description, str):
            raise AttachmentError(f"Tool {name}: the description must be text.")
        if any(t["name"] == name for t in tools):
            raise AttachmentError(f"Tool {name} is defined twice.")
        tools.append({"name": name, "description": description, "parameters": schema})
    return tools


def _nesting(text: str, most: int) -> int:
    """How deep the arrays and objects of JSON ``text`` nest (brackets inside strings left
    out), counted without parsing it and only up to past ``most``; a malformed text is
    counted as far as it goes."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > most:
                break
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def tool_specs(tools: Iterable[dict[str, Any]]) -> tuple[ToolSpec, ...]:
    return tuple(
        ToolSpec(t["name"], t.get("description", ""), t.get("parameters") or {"type": "object"})
        for t in tools
    )


def image_from_upload(name: str, data: bytes) -> dict[str, str]:
    if len(data) > MAX_IMAGE_BYTES:
        raise AttachmentError(f"{name} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    mime = next((m for magic, m in _MAGIC if data.startswith(magic)), "")
    if not mime and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if not mime:
        raise AttachmentError(f"{name} is not a PNG, JPEG, GIF or WebP image.")
    return {"data": base64.b64encode(data).decode(), "mime_type": mime}


def image_from_url(url: str) -> dict[str, str]:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or len(url) > 2000:
        raise AttachmentError(f"Image URLs must start with https:// ({url[:80]!r}).")
    return {"url": url}


def parse_images(urls_text: str, uploads: Iterable[tuple[str, bytes]]) -> list[dict[str, str]]:
    images = [image_from_url(u) for u in urls_text.splitlines() if u.strip()]
    images += [image_from_upload(name, data) for name, data in uploads]
    if len(images) > MAX_IMAGES:
        raise AttachmentError(f"Attach at most {MAX_IMAGES} images.")
    return images


def image_parts(images: Iterable[dict[str, str]]) -> tuple[ImagePart, ...]:
    return tuple(
        ImagePart(
            url=i.get("url", ""), data=i.get("data", ""), mime_type=i.get("mime_type", "image/png")
        )
        for i in images
    )
