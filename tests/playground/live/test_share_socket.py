"""A share link's websocket (/ws/shared/<token>/), through the real ASGI application: it
opens for whom the link opens, follows that session live and nothing else, renders for a
viewer (never the owner's key names, never the owner's copy of a new turn), closes soon
after the link is revoked, and counts bad tokens as the page does."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from playground.asgi import application
from playground.live import shared_consumer
from playground.models import Audience, Response, ShareLink, Status, Turn
from tests.playground.helpers import article, make_turn, responses_of
from tests.playground.share_helpers import link_to
from tests.playground.team_personas import Research, research_team

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("consumer_redis"),
]

ORIGIN = (b"origin", b"http://127.0.0.1")
KEY_LABEL = "your key 'alice-private-label'"


@pytest.fixture
def research(django_user_model: Any, owner: Any, outsider: Any) -> Research:
    return research_team(django_user_model, owner, outsider)


def cookie_for(user: Any) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())


async def socket(token: str, user: Any = None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if user is not None:
        headers.append(await sync_to_async(cookie_for)(user))
    return WebsocketCommunicator(application, f"/ws/shared/{token}/", headers=headers)


async def receive_all(communicator: WebsocketCommunicator, quiet: float = 0.6) -> list[str]:
    messages = []
    while not await communicator.receive_nothing(timeout=quiet):
        messages.append(await communicator.receive_from())
    return messages


def delta(n: int, text: str) -> dict[str, Any]:
    return {"k": "d", "t": text, "n": n, "ms": n * 10, "ttft": 10}


@sync_to_async
def streaming_turn(user: Any, prompt: str = "Say hello") -> Turn:
    turn = make_turn(user, [("echo", {})], prompt)
    turn.responses.update(
        status=Status.STREAMING, key_scope="user", key_label=KEY_LABEL, started_at=timezone.now()
    )
    return turn


@sync_to_async
def ids(turn: Turn) -> list[int]:
    return [r.pk for r in responses_of(turn)]


@sync_to_async
def shared(turn: Turn, audience: str = Audience.TEAMS) -> tuple[ShareLink, str]:
    return link_to(turn.session, audience)


@pytest.mark.parametrize(
    ("who", "opens"),
    [
        ("owner", True),
        ("teammate", True),
        ("team admin", True),
        ("outsider", False),
        ("anonymous", False),
    ],
)
async def test_a_link_for_teams_opens_its_socket_for_the_owner_and_teammates_only(
    research: Research, aredis: Any, who: str, opens: bool
) -> None:
    turn = await streaming_turn(research.owner)
    [rid] = await ids(turn)
    await aredis.xadd(f"pg:log:{rid}", delta(1, "Alice answers"), id="0-1")
    _link, token = await shared(turn)
    user = {
        "owner": research.owner,
        "teammate": research.member,
        "team admin": research.admin,
        "outsider": research.outsider,
        "anonymous": None,
    }[who]

    ws = await socket(token, user)
    ok, code = await ws.connect(timeout=5)

    if opens:
        assert ok
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        [fragment] = await receive_all(ws)
        assert "Alice answers" in fragment
        await ws.disconnect()
    else:
        assert (ok, code) == (False, 4404)
        assert await ws.receive_nothing(timeout=0.3)


async def test_a_viewer_follows_live_to_the_end_without_the_owners_key_name(
    research: Research, aredis: Any
) -> None:
    turn = await streaming_turn(research.owner)
    [rid] = await ids(turn)
    log = f"pg:log:{rid}"
    await aredis.xadd(log, delta(1, "Hello "), id="0-1")
    _link, token = await shared(turn, Audience.ANYONE)

    ws = await socket(token)  # anonymous: the link is for anyone
    assert (await ws.connect(timeout=5))[0]
    try:
        await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
        first = await ws.receive_from(timeout=5)
        assert f'<div hx-swap-oob="beforeend:#response-{rid}-text">Hello </div>' in first

        await aredis.xadd(log, delta(2, "world"), id="0-2")
        second = await ws.receive_from(timeout=5)
        assert f'<div hx-swap-oob="beforeend:#response-{rid}-text">world</div>' in second

        await sync_to_async(Response.objects.filter(pk=rid).update)(
            status=Status.DONE, text="Hello world", output_tokens=2, total_ms=20, ttft_ms=10
        )
        await aredis.xadd(log, {"k": "e", "st": "done"}, id="0-3")
        final = await ws.receive_from(timeout=5)
        assert final == article(final, rid)
        assert "<p>Hello world</p>" in final
        assert ">Done · 2 tokens · TTFT 0.01 s · 0.02 s · owner&#x27;s key</div>" in final
        assert "alice-private-label" not in final
    finally:
        await ws.disconnect()


async def test_a_new_turn_is_rendered_for_the_viewer_not_passed_on_from_the_owners_send(
    research: Research, aredis: Any
) -> None:
    first = await sync_to_async(make_turn)(
        research.owner, [("echo", {})], "First", status=Status.DONE
    )
    control = f"pg:ctl:{first.session_id}"
    seen = (await aredis.xadd(control, {"turn": first.pk})).decode()
    _link, token = await shared(first)
    ws = await socket(token, research.member)
    assert (await ws.connect(timeout=5))[0]
    try:
        await ws.send_json_to({"type": "follow", "control": seen, "responses": {}})
        second = await sync_to_async(make_turn)(
            research.owner, [("echo", {})], "Second", session=first.session
        )
        [rid] = await ids(second)
        # The owner's Send puts the owner's rendering of the articles in the announcement.
        await aredis.xadd(
            control, {"turn": second.pk, "ids": str(rid), "html": "<p>for the owner only</p>"}
        )

        fragment = await ws.receive_from(timeout=5)

        assert "for the owner only" not in fragment
        assert '<div class="prompt">Second</div>' in article(fragment, rid)
        await aredis.xadd(f"pg:log:{rid}", delta(1, "Second answer"), id="0-1")
        assert "Second answer" in await ws.receive_from(timeout=5)
    finally:
        await ws.disconnect()


async def test_the_socket_follows_only_its_sessions_responses(
    research: Research, aredis: Any
) -> None:
    shown = await streaming_turn(research.owner, "Shared question")
    [shown_rid] = await ids(shown)
    private = await streaming_turn(research.owner, "Private question")
    [private_rid] = await ids(private)
    await aredis.xadd(f"pg:log:{shown_rid}", delta(1, "shared-text"), id="0-1")
    await aredis.xadd(f"pg:log:{private_rid}", delta(1, "private-text"), id="0-1")
    _link, token = await shared(shown, Audience.ANYONE)

    ws = await socket(token)
    assert (await ws.connect(timeout=5))[0]
    try:
        await ws.send_json_to(
            {
                "type": "follow",
                "control": "0-0",
                "responses": {str(shown_rid): 0, str(private_rid): 0},
            }
        )
        messages = "".join(await receive_all(ws))
    finally:
        await ws.disconnect()

    assert "shared-text" in messages
    assert "private-text" not in messages
    assert f"response-{private_rid}-" not in messages


async def test_revoking_the_link_closes_a_viewers_socket(
    research: Research, aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_consumer, "RECHECK_SECONDS", 0.2)
    turn = await streaming_turn(research.owner)
    [rid] = await ids(turn)
    log = f"pg:log:{rid}"
    await aredis.xadd(log, delta(1, "before "), id="0-1")
    link, token = await shared(turn)
    ws = await socket(token, research.member)
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to({"type": "follow", "control": "0-0", "responses": {str(rid): 0}})
    assert "before" in await ws.receive_from(timeout=5)

    await sync_to_async(ShareLink.objects.filter(pk=link.pk).update)(revoked_at=timezone.now())
    for n in range(2, 30):  # the answer goes on streaming
        await aredis.xadd(log, delta(n, f"after-{n} "), id=f"0-{n}")

    # What was under way when the revocation was seen may still arrive; then it closes.
    while (output := await ws.receive_output(timeout=5))["type"] != "websocket.close":
        assert output["type"] == "websocket.send"
    assert output["code"] == 4404


async def test_bad_tokens_on_the_socket_are_counted(settings: Any, owner: Any) -> None:
    settings.PLAYGROUND_SHARE_TRIES_PER_IP = 2
    codes = []
    for _ in range(3):
        ws = await socket(secrets.token_urlsafe(32))
        ok, code = await ws.connect(timeout=5)
        assert not ok
        codes.append(code)

    assert codes == [4404, 4404, 4429]


async def test_a_viewer_gets_an_answer_given_again_rendered_for_a_viewer(
    owner: Any, aredis: Any
) -> None:
    from playground.live.announce import announce_answers

    turn = await sync_to_async(make_turn)(owner, [("echo", {})], "First", status=Status.DONE)
    (old,) = await sync_to_async(responses_of)(turn)
    _link, token = await sync_to_async(link_to)(turn.session, Audience.ANYONE)
    seen = (await aredis.xadd(f"pg:ctl:{turn.session_id}", {"turn": turn.pk})).decode()

    @sync_to_async
    def regenerate() -> Response:
        new = Response.objects.create(
            turn=turn,
            pane=old.pane,
            model_key="echo",
            display_name="Echo",
            key_scope="user",
            key_label=KEY_LABEL,
        )
        Response.objects.filter(pk=old.pk).update(replaced=True)
        old.refresh_from_db()
        announce_answers(turn.session_id, [new], replacing=[old])
        return new

    ws = await socket(token)
    ok, _ = await ws.connect(timeout=5)
    assert ok
    try:
        await ws.send_json_to(
            {"type": "follow", "control": seen, "turn": turn.pk, "response": old.pk}
        )
        assert await ws.receive_nothing(timeout=0.3)
        new = await regenerate()
        fragment = await ws.receive_from(timeout=5)
    finally:
        await ws.disconnect()
    assert "Earlier answer to turn 1" in article(fragment, old.pk)
    assert 'data-active="1"' in article(fragment, new.pk)
    assert "alice-private-label" not in fragment  # the viewer's own render, not the owner's
    assert "data-steer" not in fragment  # and no owner's controls
