"""The session websocket, through the real ASGI application (origin check, session cookie,
routing): replay after a sequence number, then live; the final answer; new turns; and
nobody follows what is not theirs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from autobahn.exception import Disconnected
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from playground.asgi import application
from playground.live import consumer, response_log
from playground.models import Response, Status, Turn
from tests.playground.helpers import article, make_turn, responses_of

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("consumer_redis"),
]

ORIGIN = (b"origin", b"http://127.0.0.1")


def cookie_for(user: Any) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())


def socket(session_id: int, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=[*headers])


async def connected(session_id: int, user: Any) -> WebsocketCommunicator:
    communicator = socket(session_id, await sync_to_async(cookie_for)(user), ORIGIN)
    ok, _ = await communicator.connect(timeout=5)
    assert ok
    return communicator


async def receive_all(communicator: WebsocketCommunicator, quiet: float = 0.6) -> list[str]:
    """Every message that arrives until nothing more comes for ``quiet`` seconds."""
    messages = []
    while not await communicator.receive_nothing(timeout=quiet):
        messages.append(await communicator.receive_from())
    return messages


def delta(n: int, text: str) -> dict[str, Any]:
    return {"k": "d", "t": text, "n": n, "ms": n * 10, "ttft": 10}


@sync_to_async
def streaming_turn(user: Any, prompt: str = "Say hello", panes: int = 1) -> Turn:
    turn = make_turn(user, [("echo", {})] * panes, prompt)
    turn.responses.update(status=Status.STREAMING)
    return turn


@sync_to_async
def response_ids(turn: Turn) -> list[int]:
    return [r.pk for r in responses_of(turn)]


async def test_replay_after_a_seq_then_live_then_the_final_answer(owner: Any, aredis: Any) -> None:
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    log = f"pg:log:{rid}"
    await aredis.xadd(log, delta(1, "Hello "), id="0-1")
    await aredis.xadd(log, delta(2, "**bold** < y"), id="0-2")
    await aredis.xadd(log, delta(3, " & z"), id="0-3")

    ws = await connected(turn.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 1}})

        # Replay: entries 2 and 3 merged into one fragment; entry 1 was already shown.
        first = await ws.receive_from(timeout=5)
        assert first == (
            f'<div hx-swap-oob="beforeend:#response-{rid}-text">**bold** &lt; y &amp; z</div>'
            f'<div class="status" id="response-{rid}-status" data-seq="3" data-elapsed="30"'
            ' hx-swap-oob="true">Streaming · 3 tokens · TTFT 0.01 s · 150.0 tok/s · 0.03 s'
            "</div>"
        )

        # Live: the next entry alone.
        await aredis.xadd(log, delta(4, " again"), id="0-4")
        second = await ws.receive_from(timeout=5)
        assert second == (
            f'<div hx-swap-oob="beforeend:#response-{rid}-text"> again</div>'
            f'<div class="status" id="response-{rid}-status" data-seq="4" data-elapsed="40"'
            ' hx-swap-oob="true">Streaming · 4 tokens · TTFT 0.01 s · 133.3 tok/s · 0.04 s'
            "</div>"
        )

        # The end: the row holds the answer; the fragment replaces the whole article.
        await sync_to_async(Response.objects.filter(pk=rid).update)(
            status=Status.DONE,
            text="Hello **bold** < y & z again",
            output_tokens=4,
            total_ms=40,
            ttft_ms=10,
            finish_reason="stop",
        )
        await aredis.xadd(log, {"k": "e", "st": "done"}, id="0-5")
        final = await ws.receive_from(timeout=5)
        assert final.startswith(
            f'<article class="response status-done" id="response-{rid}" data-response="{rid}"'
            ' hx-swap-oob="true" aria-label="Echo, turn 1">'
        )
        assert final == article(final, rid)
        assert (
            '<div class="text markdown"><p>Hello <strong>bold</strong> &lt; y &amp; z again</p>'
            in final
        )
        assert f'id="response-{rid}-status" data-seq="5"' in final
        assert ">Done · 4 tokens · TTFT 0.01 s · 0.04 s</div>" in final
        assert "data-active" not in final
        assert "streaming" not in final

        # An ended pane is no longer followed.
        await aredis.xadd(log, delta(6, "late"), id="0-6")
        assert await ws.receive_nothing(timeout=0.5)
    finally:
        await ws.disconnect()


async def test_an_answer_whose_log_lost_its_end_is_shown_ended_from_its_row(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis restarted without its last second can lose a log's end entry after the row
    was written: the page is sent the finished article from the row (it waited until a
    reload), and only once the row has ended."""
    monkeypatch.setattr(consumer, "BLOCK_MS", 200)
    monkeypatch.setattr(consumer, "LOST_END_S", 0.5)
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    log = f"pg:log:{rid}"
    await aredis.xadd(log, delta(1, "Hello "), id="0-1")
    await aredis.xadd(log, delta(2, "there"), id="0-2")
    await aredis.set(response_log.heartbeat_key(rid), "1", ex=30)  # its worker is alive

    ws = await connected(turn.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        replay = await ws.receive_from(timeout=5)
        assert "Hello there" in replay
        assert await ws.receive_nothing(timeout=1.5)  # streaming and silent: nothing to say

        # The worker ends the row; its log's end entry is lost with Redis's last second.
        await sync_to_async(Response.objects.filter(pk=rid).update)(
            status=Status.DONE, text="Hello there, friend", output_tokens=3, finish_reason="stop"
        )
        await aredis.delete(response_log.heartbeat_key(rid))

        final = await ws.receive_from(timeout=5)
        assert final == article(final, rid)
        assert '<article class="response status-done"' in final
        assert "Hello there, friend" in final
        assert f'id="response-{rid}-status" data-seq="2"' in final
        assert await ws.receive_nothing(timeout=1.5)  # once
        await aredis.xadd(log, delta(3, "late"), id="0-3")
        assert await ws.receive_nothing(timeout=0.5)  # and no longer followed
    finally:
        await ws.disconnect()


async def test_a_page_gone_while_it_is_sent_to_is_not_an_error(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload or a closed tab while a fragment is on its way: daphne's protocol refuses
    the send; the follower stops quietly (it logged an error with a traceback)."""
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    await aredis.set(response_log.heartbeat_key(rid), "1", ex=30)
    ws = await connected(turn.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        assert await ws.receive_nothing(timeout=0.5)

        async def gone(*_args: Any, **_kwargs: Any) -> None:
            raise Disconnected("Attempt to send on a closed protocol")

        monkeypatch.setattr(consumer.SessionConsumer, "send", gone)
        await aredis.xadd(f"pg:log:{rid}", delta(1, "Hello"), id="0-1")
        await asyncio.sleep(0.5)
    finally:
        await ws.disconnect()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_follow_from_zero_replays_everything_in_one_fragment(owner: Any, aredis: Any) -> None:
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    for n, text in enumerate(["One ", "two ", "three"], start=1):
        await aredis.xadd(f"pg:log:{rid}", delta(n, text), id=f"0-{n}")

    ws = await connected(turn.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        [fragment] = await receive_all(ws)
        assert f'<div hx-swap-oob="beforeend:#response-{rid}-text">One two three</div>' in fragment
        assert 'data-seq="3"' in fragment
    finally:
        await ws.disconnect()


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
async def test_others_are_refused_with_4404(
    owner: Any, outsider: Any, aredis: Any, who: str
) -> None:
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    await aredis.xadd(f"pg:log:{rid}", delta(1, "Alice's secret"), id="0-1")
    headers = [ORIGIN]
    if who == "outsider":
        headers.append(await sync_to_async(cookie_for)(outsider))

    ws = socket(turn.session_id, *headers)
    ok, code = await ws.connect(timeout=5)

    assert (ok, code) == (False, 4404)
    assert await ws.receive_nothing(timeout=0.3)
    await ws.wait(timeout=1)


async def test_owner_from_a_foreign_origin_is_refused(owner: Any) -> None:
    turn = await streaming_turn(owner)
    cookie = await sync_to_async(cookie_for)(owner)

    ws = socket(turn.session_id, cookie, (b"origin", b"https://evil.example"))
    ok, _ = await ws.connect(timeout=5)

    assert not ok


async def test_a_follow_naming_someone_elses_response_does_not_stream_it(
    owner: Any, outsider: Any, aredis: Any
) -> None:
    alices = await streaming_turn(owner, "Alice's question")
    [alice_rid] = await response_ids(alices)
    mallorys = await streaming_turn(outsider, "Mallory's question")
    [mallory_rid] = await response_ids(mallorys)
    await aredis.xadd(f"pg:log:{alice_rid}", delta(1, "alice-secret-1 "), id="0-1")
    await aredis.xadd(f"pg:log:{mallory_rid}", delta(1, "mallory-own-1 "), id="0-1")

    ws = await connected(mallorys.session_id, outsider)
    try:
        await ws.send_json_to(
            {
                "type": "follow",
                "control": "0-0",
                "responses": {str(alice_rid): 0, str(mallory_rid): 0},
            }
        )
        messages = await receive_all(ws)
        await aredis.xadd(f"pg:log:{alice_rid}", delta(2, "alice-secret-2"), id="0-2")
        await aredis.xadd(f"pg:log:{mallory_rid}", delta(2, "mallory-own-2"), id="0-2")
        messages += await receive_all(ws)
    finally:
        await ws.disconnect()

    assert len(messages) == 2
    assert "mallory-own-1" in messages[0]
    assert "mallory-own-2" in messages[1]
    for message in messages:
        assert "alice-secret" not in message
        assert f"response-{alice_rid}-" not in message


async def test_a_new_turn_on_the_control_stream_appends_its_articles(
    owner: Any, aredis: Any
) -> None:
    first = await sync_to_async(make_turn)(
        owner, [("echo", {}), ("echo", {})], "First", status=Status.DONE
    )
    control = f"pg:ctl:{first.session_id}"
    seen = (await aredis.xadd(control, {"turn": first.pk})).decode()

    ws = await connected(first.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": seen, "responses": {}})
        assert await ws.receive_nothing(timeout=0.3)  # the first turn is not announced again

        second = await sync_to_async(make_turn)(
            owner, [("echo", {}), ("echo", {})], "Second", session=first.session
        )
        left, right = await response_ids(second)
        announced = (await aredis.xadd(control, {"turn": second.pk})).decode()
        fragment = await ws.receive_from(timeout=5)

        assert fragment.startswith('<div hx-swap-oob="beforeend:#pane-0-history"><article')
        assert fragment.count("<article ") == 2
        assert fragment.index("#pane-0-history") < fragment.index(f'id="response-{left}"')
        assert (
            fragment.index(f'id="response-{left}"')
            < fragment.index("#pane-1-history")
            < fragment.index(f'id="response-{right}"')
        )
        for rid in (left, right):
            shown = article(fragment, rid)
            assert 'data-active="1"' in shown
            assert "status-pending" in shown
            assert '<div class="prompt">Second</div>' in shown
            assert ">Queued</div>" in shown
        for old in await response_ids(first):
            assert f"response-{old}" not in fragment
        assert fragment.endswith(
            f'<div id="live-control" hx-swap-oob="true" data-control="{announced}" '
            f'data-turn="{second.pk}" data-response="{right}" hidden></div>'
        )

        # The new responses are followed from their first entry on.
        await aredis.xadd(f"pg:log:{right}", delta(1, "Right here"), id="0-1")
        live = await ws.receive_from(timeout=5)
        assert live.startswith(
            f'<div hx-swap-oob="beforeend:#response-{right}-text">Right here</div>'
        )
    finally:
        await ws.disconnect()


async def test_a_follow_up_sent_on_the_page_reaches_a_follower_with_its_articles(
    owner: Any, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Send view puts the new turn's articles in its announcement; the follower sends
    them as they are, with the page's control note, the same HTML it would render from
    the database."""
    from playground.live.fragments import render_new_turn
    from playground.tasks import run_turn

    monkeypatch.setattr(run_turn, "delay", lambda *args: None)  # no worker in this test
    first = await sync_to_async(make_turn)(owner, [("echo", {})], "First", status=Status.DONE)
    control = f"pg:ctl:{first.session_id}"
    seen = (await aredis.xadd(control, {"turn": first.pk})).decode()
    ws = await connected(first.session_id, owner)
    try:
        await ws.send_json_to({"type": "follow", "control": seen, "responses": {}})

        def send_follow_up() -> None:
            browser = Client()
            browser.force_login(owner)
            form = {"prompt": "Second", "pane": ["0"], "pane-0-model": "echo"}
            sent = browser.post(f"/s/{first.session_id}/send/", form, HTTP_HX_REQUEST="true")
            assert sent.status_code == 200

        await sync_to_async(send_follow_up)()
        fragment = await ws.receive_from(timeout=5)

        second = await Turn.objects.aget(session_id=first.session_id, index=1)
        [(announced, _fields)] = await aredis.xrange(control, min=f"({seen}")
        from_database, [rid] = await render_new_turn(
            first.session_id, second.pk, announced.decode()
        )
        assert fragment == from_database
        assert f'id="response-{rid}"' in fragment
        assert '<div class="prompt">Second</div>' in fragment
    finally:
        await ws.disconnect()


async def test_a_turn_the_page_already_shows_is_not_appended_twice(owner: Any, aredis: Any) -> None:
    # The page read the control stream before its rows: a turn sent in between is both on
    # the page and announced after the page's control id. The page says which turn it shows.
    first = await sync_to_async(make_turn)(owner, [("echo", {})], "First", status=Status.DONE)
    control = f"pg:ctl:{first.session_id}"
    second = await sync_to_async(make_turn)(owner, [("echo", {})], "Second", session=first.session)
    await aredis.xadd(control, {"turn": second.pk})
    [rid] = await response_ids(second)

    ws = await connected(first.session_id, owner)
    try:
        await ws.send_json_to(
            {"type": "follow", "control": "0-0", "turn": second.pk, "responses": {str(rid): 0}}
        )
        await aredis.xadd(f"pg:log:{rid}", delta(1, "only once"), id="0-1")
        fragments = await receive_all(ws)
        assert "<article " not in "".join(fragments)
        assert "".join(fragments).count("only once") == 1
        third = await sync_to_async(make_turn)(
            owner, [("echo", {})], "Third", session=first.session
        )
        await aredis.xadd(control, {"turn": third.pk})
        fragment = await ws.receive_from(timeout=5)
        assert fragment.count("<article ") == 1 and "Third" in fragment
    finally:
        await ws.disconnect()


async def test_garbage_messages_are_ignored(owner: Any, aredis: Any) -> None:
    turn = await streaming_turn(owner)
    [rid] = await response_ids(turn)
    await aredis.xadd(f"pg:log:{rid}", delta(1, "still here"), id="0-1")

    ws = await connected(turn.session_id, owner)
    try:
        for junk in ["not json", "[1, 2]", '{"type": "other"}']:
            await ws.send_to(text_data=junk)
        await ws.send_json_to(
            {
                "type": "follow",
                "control": "²-0",  # a digit to str.isdigit, not to Redis
                "responses": {str(rid): "nope", "abc": 3, "²": 1, "-1": 2},
            }
        )
        [fragment] = await receive_all(ws)
        assert f'beforeend:#response-{rid}-text">still here</div>' in fragment
    finally:
        await ws.disconnect()


async def test_an_answer_given_again_folds_the_old_one_and_streams_the_new(
    owner: Any, aredis: Any
) -> None:
    from playground.live.announce import announce_answers

    turn = await sync_to_async(make_turn)(owner, [("echo", {})], "First", status=Status.DONE)
    (old,) = await sync_to_async(responses_of)(turn)
    control = f"pg:ctl:{turn.session_id}"
    seen = (await aredis.xadd(control, {"turn": turn.pk})).decode()

    @sync_to_async
    def regenerate() -> Response:
        new = Response.objects.create(
            turn=turn, pane=old.pane, model_key="echo", display_name="Echo"
        )
        Response.objects.filter(pk=old.pk).update(replaced=True)
        old.refresh_from_db()
        announce_answers(turn.session_id, [new], replacing=[old])
        return new

    ws = await connected(turn.session_id, owner)
    late = await connected(turn.session_id, owner)
    try:
        start = {"type": "follow", "control": seen, "turn": turn.pk, "response": old.pk}
        await ws.send_json_to({**start, "responses": {}})
        assert await ws.receive_nothing(timeout=0.3)
        new = await regenerate()
        fragment = await ws.receive_from(timeout=5)
        folded = article(fragment, old.pk)
        assert "Earlier answer to turn 1 (answered again)" in folded
        assert 'hx-swap-oob="true"' in folded
        assert f'<div hx-swap-oob="afterend:#response-{old.pk}">' in fragment
        assert 'data-active="1"' in article(fragment, new.pk)
        assert f'data-response="{new.pk}" hidden></div>' in fragment  # the page's mark
        await aredis.xadd(f"pg:log:{new.pk}", delta(1, "again "), id="0-1")
        assert "again " in await ws.receive_from(timeout=5)
        # A page rendered after the regeneration (it shows the new answer) is not sent
        # the new answer a second time when it replays the control stream.
        await late.send_json_to({**start, "response": new.pk, "responses": {str(new.pk): 1}})
        assert await late.receive_nothing(timeout=0.6)
    finally:
        await ws.disconnect()
        await late.disconnect()
