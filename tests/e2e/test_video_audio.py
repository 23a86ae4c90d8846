"""A person attaches a short clip and a recording to a comparison of two models that take
them (Gemini inline, Qwen-Omni in DashScope's compatible mode) and one that takes neither
(Claude): two answers, one refusal before any call, the bytes each vendor received, and the
players in the history serving the files back to their owner."""

from __future__ import annotations

import base64
import re
from typing import Any

from playwright.sync_api import expect

from playground.media import media_tokens
from playground.models import Response, Status
from tests.e2e.test_comparison import set_pane
from tests.playground.media.samples import mp4, wav

CLIP = mp4(2.0)
TALK = wav(1.0)
GEMINI = "Google · Gemini 2.5 Flash"
QWEN = "Alibaba · Qwen-Omni Turbo"
CLAUDE = "Anthropic · Claude Haiku 4.5"


def test_a_clip_and_a_recording_go_to_the_models_that_take_them(page: Any, stack: Any) -> None:
    page.goto("/")
    panes = page.locator("section.pane")
    page.get_by_role("button", name="Add model").click()
    expect(panes).to_have_count(3)
    for index, name in enumerate((GEMINI, QWEN, CLAUDE)):
        set_pane(page, index, name, "0.5")
    # The limits are said before anyone picks a file.
    expect(page.locator(".attachments .hint")).to_contain_text("up to 20 MB and 5 minutes")
    page.get_by_label("Videos", exact=True).set_input_files(
        files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": CLIP}]
    )
    page.get_by_label("Recordings", exact=True).set_input_files(
        files=[{"name": "talk.wav", "mimeType": "audio/wav", "buffer": TALK}]
    )
    before = len(stack.vendors.requests)
    page.get_by_label("Prompt").fill("What do you see and hear?")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    expect(page.locator("article.status-done")).to_have_count(2, timeout=30_000)
    expect(page.locator("article.status-error")).to_have_count(1)

    refused = page.get_by_role("region", name=CLAUDE).locator("article")
    expect(refused.locator(".error")).to_have_text(f"{CLAUDE} cannot take videos.")
    for name in (GEMINI, QWEN):
        answer = page.get_by_role("region", name=name).locator("article .text").last
        expect(answer).not_to_be_empty()
    rows = {r.display_name: r for r in Response.objects.all()}
    assert rows[CLAUDE].status == Status.ERROR and rows[CLAUDE].text == ""
    assert rows[GEMINI].status == rows[QWEN].status == Status.DONE

    # What each vendor received; nothing went to Anthropic.
    sent = stack.vendors.requests[before:]
    paths = [r["path"].split("?")[0] for r in sent]
    assert not any(p.endswith("/v1/messages") for p in paths), paths
    clip, talk = base64.b64encode(CLIP).decode(), base64.b64encode(TALK).decode()
    gemini = next(
        r["body"] for r in sent if r["path"].split("?")[0].endswith(":streamGenerateContent")
    )
    parts = gemini["contents"][0]["parts"]
    assert {"inlineData": {"mimeType": "video/mp4", "data": clip}} in parts
    assert {"inlineData": {"mimeType": "audio/wav", "data": talk}} in parts
    qwen = next(r for r in sent if r["path"].startswith("/compatible-mode/v1/chat/completions"))
    content = qwen["body"]["messages"][-1]["content"]
    assert {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{clip}"}} in content
    assert {
        "type": "input_audio",
        "input_audio": {"data": f"data:;base64,{talk}", "format": "wav"},
    } in content
    assert qwen["body"]["model"] == "qwen-omni-turbo"

    # The history shows what the turn carried, and the players get the files back.
    article = page.get_by_role("region", name=GEMINI).locator("article").last
    expect(article.locator(".attached")).to_have_text("1 video · 1 recording")
    video, audio = article.locator("video"), article.locator("audio")
    expect(video).to_have_count(1)
    expect(audio).to_have_count(1)
    for player, data in ((video, CLIP), (audio, TALK)):
        src = player.evaluate("el => el.src")
        fetched = page.request.get(src)
        assert fetched.ok and fetched.body() == data


def at_most(estimate: str) -> int:
    found = re.search(r"At most ([\d,]+) tokens", estimate)
    assert found, estimate
    return int(found.group(1).replace(",", ""))


def test_with_no_key_echo_takes_a_clip_and_a_recording_and_local_refuses_them(page: Any) -> None:
    """What a new user of `make run` can try with no key: Echo says what it was given, the
    local model (text only) is refused before its call with the sentence naming it."""
    page.goto("/")
    expect(page.locator("section.pane")).to_have_count(2)
    set_pane(page, 0, "Echo", "0.5")
    set_pane(page, 1, "Local · SmolLM2-135M", "0.5")

    def counts_the_prompt(r: Any) -> bool:  # not one asked as focus left a field
        return r.url.endswith("/estimate/") and "these" in (r.request.post_data or "")

    with page.expect_response(counts_the_prompt) as answered:
        page.get_by_label("Prompt").fill("What is in these?")
    before = at_most(answered.value.text())
    estimate = page.locator("#estimate")
    page.get_by_label("Videos", exact=True).set_input_files(
        files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": CLIP}]
    )
    page.get_by_label("Recordings", exact=True).set_input_files(
        files=[{"name": "talk.wav", "mimeType": "audio/wav", "buffer": TALK}]
    )
    # The estimate counts the picked files, each as long as its limit allows, in both panes.
    files = media_tokens([{"kind": "video"}, {"kind": "audio"}])
    expect(estimate).to_contain_text(f"At most {before + 2 * files:,} tokens")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/s/\d+/$"))
    echo = page.get_by_role("region", name="Echo").locator("article").last
    expect(echo).to_have_class(re.compile("status-done"), timeout=30_000)
    kb = lambda data: max(1, round(len(data) / 1024))  # noqa: E731
    expect(echo.locator(".text")).to_have_text(
        f"Echo #1: What is in these? [video: MP4, {kb(CLIP)} KB] [recording: WAV, {kb(TALK)} KB]"
    )
    local = page.get_by_role("region", name="Local · SmolLM2-135M").locator("article").last
    expect(local).to_have_class(re.compile("status-error"))
    expect(local.locator(".error")).to_have_text("Local · SmolLM2-135M cannot take videos.")
    rows = {r.display_name: r for r in Response.objects.all()}
    assert rows["Local · SmolLM2-135M"].text == ""
