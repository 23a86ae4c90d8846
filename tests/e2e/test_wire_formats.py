"""One comparison across four wire formats at once (OpenAI SSE, Anthropic's named events,
Gemini's SSE, Ollama's NDJSON), each served by a local fake speaking it from a recorded
stream: every pane ends with the vendor's text, its reported usage and its cost."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from playwright.sync_api import expect

from playground.models import CatalogEntry, Response, Status
from tests.e2e.test_comparison import set_pane

PANES = {
    "OpenAI · GPT-4.1 mini": ("Paris is the capital of France.", 21, 83, "$0.0001"),
    "Anthropic · Claude Haiku 4.5": ("Hello! How can I help?", 25, 12, "$0.000085"),
    "Google · Gemini 2.5 Flash": (
        "Why did the scarecrow win an award? Because he was outstanding in his field!\n",
        9,
        17,
        "$0.000045",
    ),
    "Ollama · Llama 3.2": ("Hello! How can I help?", 26, 9, "$0"),
}


def test_four_wire_formats_stream_side_by_side_with_usage_and_cost(page: Any, stack: Any) -> None:
    CatalogEntry.objects.filter(key="ollama:llama3.2").update(enabled=True)
    stack.wait_for_catalog(page.request, offers="Ollama · Llama 3.2")
    page.goto("/")
    panes = page.locator("section.pane")
    for index in range(2, 4):
        page.get_by_role("button", name="Add model").click()
        expect(panes).to_have_count(index + 1)
    for index, name in enumerate(PANES):
        set_pane(page, index, name, "0.5")
    page.get_by_label("Prompt").fill("Say something short.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    try:
        expect(page.locator("article.status-done")).to_have_count(4, timeout=30_000)
    except AssertionError:
        rows = Response.objects.values_list("display_name", "status", "error", "text")
        raise AssertionError(f"not every pane ended done: {list(rows)}") from None

    for name, (text, input_tokens, output_tokens, cost) in PANES.items():
        pane = page.get_by_role("region", name=name)
        expect(pane.locator("article .text").last).to_have_text(text.strip())
        status = pane.locator(".status").last
        expect(status).to_contain_text(f"Done · {output_tokens} tokens")
        expect(status).to_contain_text(cost)
        row = Response.objects.get(display_name=name)
        assert (row.status, row.text, row.input_tokens, row.output_tokens) == (
            Status.DONE,
            text,
            input_tokens,
            output_tokens,
        )
        assert not row.usage_estimated
    assert Response.objects.get(display_name="Ollama · Llama 3.2").cost == Decimal(0)

    # Each vendor got its own wire format, with its own way of carrying the key.
    sent = {r["path"].split("?")[0]: r for r in stack.vendors.requests[-4:]}
    assert sent["/v1/chat/completions"]["headers"]["Authorization"].startswith("Bearer sk-e2e")
    assert sent["/v1/chat/completions"]["body"]["stream_options"] == {"include_usage": True}
    assert sent["/v1/messages"]["headers"]["x-api-key"] == "sk-ant-e2e-key-0000000000000"
    assert sent["/v1/messages"]["body"]["stream"] is True
    gemini = next(p for p in sent if p.endswith(":streamGenerateContent"))
    assert sent[gemini]["body"]["contents"][0]["parts"] == [{"text": "Say something short."}]
    ollama = sent["/api/chat"]["body"]["options"]
    assert ollama.get("temperature") == 0.5, ollama
