"""The websocket a session page keeps open: it follows the session's panes live.

The consumer tails the response logs in Redis itself (``XREAD BLOCK`` from the client's last
sequence number), together with the session's control stream, which announces new turns.
So replay after a reload or reconnect and following live are the same loop, nothing can be
dropped (a full channel-layer buffer cannot lose a delta) and nothing can be doubled (ids
are sequence numbers). Any web process can serve any session: the record is in Redis.

A share link's read-only page follows its session through the same loop
(``live/shared_consumer.py``: reached by the link's token instead, rendering for a viewer).

Protocol: the page sends ``{"type": "follow", "control": "<id>", "turn": <last turn id
shown>, "responses": {"<id>": <seq>}}`` on every (re)connect; the consumer sends HTML
fragments that htmx swaps out-of-band into the panes. The page acknowledges what it has
swapped in, ``{"type": "ack", "n": <messages received on this socket>}``, at most every
100 ms: the consumer stops reading the logs while more than ``WINDOW_CHARS`` it sent are
not acknowledged (a tab that stopped reading then costs that much memory, not the whole
stream: what it misses stays in the logs), and closes the socket (``STOPPED_READING``)
when that lasts ``STALL_S``; the page reconnects and resumes from what it shows.

Close codes the page sees: 4404 (no access, or no longer), 4408 (it stopped reading),
4409 (too many sockets of this person's open: ``live/open_sockets.py``), 4500 (the follower
failed, e.g. Redis went away: the page reconnects and resumes from what it shows), 4503 (the
database did not answer: ``playground/database_away.py``; the page tries again, waiting
longer each time). Not 1011: daphne's websocket library lets an application close only
with 1000 or 3000-4999, and refused 1011 by raising, which left the socket open with nothing
following it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
from typing import Any, cast

import redis.asyncio as aioredis
from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404
from redis.exceptions import RedisError

from playground.access import session_for_user
from playground.database_away import SCOPE_KEY, SOCKET_CLOSE_CODE, is_database_away, note
from playground.live import open_sockets, response_log
from playground.live.db_threads import off_request_thread
from playground.live.fragments import (
    live_control,
    render_answers,
    render_batch,
    render_final,
    render_new_turn,
)
from playground.live.watchdog import ended_of, reap_dead
from playground.models import Response, Session

log = logging.getLogger(__name__)

BLOCK_MS = 2000  # how often an idle follower looks for panes whose worker died
# A pane whose row has ended, still without its log's end entry at a look this much later
# (the worker writes it within a publisher tick of the row, 0.2 s): the entry was lost.
LOST_END_S = 1.5
MAX_FOLLOWED = 200
WINDOW_CHARS = 1_000_000  # sent and not yet acknowledged by the page: then it waits
STALL_S = 30.0  # waiting that long for the page to read closes the socket
STOPPED_READING = 4408
FAILED = 4500

_redis: aioredis.Redis | None = None


def shared_redis() -> aioredis.Redis:
    """One connection pool per web process (each follower holds one connection while it
    blocks)."""
    global _redis
    if _redis is None:
        _redis = aioredis.Redis.from_url(settings.REDIS_URL, max_connections=2000)
    return _redis


class SessionConsumer(AsyncWebsocketConsumer):
    # No channel layer: this consumer reads Redis itself. Subscribed, every connection would
    # hold a blocking channels-redis read that redis-py 8 times out after a few seconds,
    # which ends the websocket (measured by bench/streams.py: panes lost their last deltas).
    channel_layer_alias = "none (this consumer tails Redis Streams itself)"

    session: Session
    follower: asyncio.Task[None] | None = None
    counted = False  # among the person's open sockets (live/open_sockets.py)
    # Rendered for a share link's viewer (live/shared_consumer.py): no names of the owner's
    # keys, and nothing the owner's Send rendered for the owner.
    shared = False
    accepted = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Every handler (connect, the page's follow) that meets the database away closes
        the socket with SOCKET_CLOSE_CODE: the page comes back later and resumes."""
        try:
            await super().dispatch(message)
        except Exception as error:
            if not is_database_away(error):
                raise
            note(error, f"websocket {self.scope.get('path', '')}")
            await self.close_database_away()

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def close_database_away(self) -> None:
        # Accepted first: a refusal before accepting reaches the page as 1006 only, which
        # it cannot tell from a network fault.
        if not self.accepted:
            await self.accept()
        await self.close(code=SOCKET_CLOSE_CODE)

    async def connect(self) -> None:
        if self.scope.get(SCOPE_KEY):  # the sign-in could not be read
            await self.close_database_away()
            return
        user = self.scope.get("user")
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        try:
            self.session = await off_request_thread(session_for_user)(user, session_id)
        except Http404:
            await self.close(code=4404)
            return
        await self.start()

    async def start(self) -> None:
        """Accept the socket once ``self.session`` is known to be the person's to follow;
        then close it (4409) if the person has as many open as they may."""
        self.cursors: dict[str, str] = {}
        self.ended_seen: dict[int, float] = {}  # rows seen ended before their logs said so
        self.known_turn = 0
        self.known_response = 0
        self.wake = asyncio.Event()
        # What was sent and not yet acknowledged: (message number, characters) each.
        self.sent = 0
        self.unacked: collections.deque[tuple[int, int]] = collections.deque()
        self.unacked_chars = 0
        self.acked = asyncio.Event()
        self.person = open_sockets.person_of(self.scope)
        self.socket_id = uuid.uuid4().hex
        self.seen_at = time.monotonic()
        cap = settings.PLAYGROUND_SOCKETS_PER_PERSON
        try:
            self.counted = await open_sockets.take(shared_redis(), self.person, self.socket_id, cap)
        except (RedisError, OSError) as error:
            log.warning("socket of session %s not counted, Redis away: %s", self.session.pk, error)
            await self.accept()
            await self.close(code=FAILED)  # the page tries again
            return
        await self.accept()  # a refusal before accepting reaches the page as 1006 only
        if not self.counted:
            await self.close(code=open_sockets.TOO_MANY)

    async def still_allowed(self) -> bool:
        """Whether the socket may go on following (checked after every read); the owner's
        may, as long as it is open."""
        return True

    async def disconnect(self, code: int) -> None:
        if self.follower is not None:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.follower
        if self.counted:
            self.counted = False
            with contextlib.suppress(Exception):  # else it is dropped once stale
                await open_sockets.give_back(shared_redis(), self.person, self.socket_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ack":
            self._acknowledged(_valid_seq(message.get("n")))
            return
        if not isinstance(message, dict) or message.get("type") != "follow":
            return
        if not self.counted:
            return  # closed: over the person's sockets
        cursors: dict[str, str] = {}
        control = str(message.get("control") or "0-0")
        cursors[response_log.control_key(self.session.pk)] = _valid_id(control)
        self.known_turn = _valid_seq(message.get("turn"))
        self.known_response = _valid_seq(message.get("response"))
        responses = message.get("responses") or {}
        if isinstance(responses, dict):
            wanted = await self._owned_responses(list(responses)[:MAX_FOLLOWED])
            for response_id in wanted:
                seq = responses.get(str(response_id), 0)
                cursors[response_log.log_key(response_id)] = response_log.entry_id(_valid_seq(seq))
        self.cursors = cursors
        if self.follower is None or self.follower.done():
            self.follower = asyncio.create_task(self._follow())
        else:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.follower
            self.follower = asyncio.create_task(self._follow())

    @off_request_thread
    def _owned_responses(self, ids: list[Any]) -> list[int]:
        """Only responses of this session can be followed (ids from the client are
        untrusted)."""
        numbers = [int(i) for i in ids if str(i).isascii() and str(i).isdigit()]
        return list(
            Response.objects.filter(pk__in=numbers, turn__session=self.session).values_list(
                "pk", flat=True
            )
        )

    async def _follow(self) -> None:
        redis = shared_redis()
        control = response_log.control_key(self.session.pk)
        try:
            while True:
                if not await self._room_to_send():
                    await self.close(code=STOPPED_READING)
                    return
                await self._still_open()
                streams = dict(self.cursors)
                # RESP2 (our connection's protocol) answers a list of [key, entries].
                result = cast(
                    list[Any],
                    await redis.xread(streams, count=1000, block=BLOCK_MS),  # type: ignore[arg-type]
                )
                if not await self.still_allowed():
                    await self.close(code=4404)
                    return
                if not result:
                    await self._check_dead()
                    continue
                # Everything one read brought goes out as one websocket message: htmx swaps
                # each fragment in it (fewer frames: bench/streams.py, heavy load).
                fragments: list[str] = []
                for raw_key, entries in result:
                    key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                    last = entries[-1][0]
                    self.cursors[key] = last.decode() if isinstance(last, bytes) else last
                    if key == control:
                        for _entry_id, fields in entries:
                            fragments.append(await self._new_turn(fields, self.cursors[key]))
                    else:
                        fragments.append(await self._pane(key, response_log.merge(entries)))
                html = "".join(fragments)
                if html:
                    await self._send_counted(html)
        except asyncio.CancelledError:
            raise
        except Disconnected:
            return  # the page went away (a reload, a closed tab) while it was being sent to
        except (RedisError, OSError) as error:
            log.warning("follower of session %s lost Redis: %s", self.session.pk, error)
            await self.close(code=FAILED)
        except Exception as error:
            if is_database_away(error):
                note(error, f"follower of session {self.session.pk}")
                await self.close(code=SOCKET_CLOSE_CODE)
                return
            log.exception("follower of session %s failed", self.session.pk)
            await self.close(code=FAILED)

    async def _send_counted(self, html: str) -> None:
        self.sent += 1
        self.unacked.append((self.sent, len(html)))
        self.unacked_chars += len(html)
        await self.send(text_data=html)

    def _acknowledged(self, received: int) -> None:
        """The page has swapped in the first ``received`` messages of this socket."""
        while self.unacked and self.unacked[0][0] <= received:
            self.unacked_chars -= self.unacked.popleft()[1]
        self.acked.set()

    async def _room_to_send(self) -> bool:
        """Wait while the page has more than WINDOW_CHARS to acknowledge; False when it has
        not caught up within STALL_S (it stopped reading)."""
        if self.unacked_chars <= WINDOW_CHARS:
            return True
        deadline = time.monotonic() + STALL_S
        while self.unacked_chars > WINDOW_CHARS:
            self.acked.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.acked.wait(), left)
        return True

    async def _still_open(self) -> None:
        """Tell the count of open sockets this one is alive, now and then."""
        if self.counted and time.monotonic() - self.seen_at >= open_sockets.REFRESH_S:
            self.seen_at = time.monotonic()
            await open_sockets.refresh(shared_redis(), self.person, self.socket_id)

    async def _new_turn(self, fields: dict[Any, Any], control_id: str) -> str:
        entry = response_log.decoded(fields)
        if "answers" in entry:  # answers added to a turn the page shows (steering)
            newest = _valid_seq(entry.get("last"))
            if newest <= self.known_response:
                return ""  # the page was rendered with them
            self.known_response = newest
            response_ids = [int(i) for i in entry["answers"].split(",") if i.isdigit()]
            if self.shared:  # rendered for the owner: a viewer's are rendered here
                html = await render_answers(self.session.pk, response_ids, shared=True)
            else:
                html = entry.get("html", "")
            html += live_control(control_id, self.known_turn, newest)
        elif "turn" in entry:
            turn_id = int(entry["turn"])
            if turn_id <= self.known_turn:
                return ""  # the page already shows it (it was rendered with the page)
            self.known_turn = turn_id
            if "html" in entry and not self.shared:  # the articles, rendered by the Send view
                response_ids = [int(i) for i in entry.get("ids", "").split(",") if i.isdigit()]
                self.known_response = max([self.known_response, *response_ids])
                html = entry["html"] + live_control(control_id, turn_id, self.known_response)
            else:
                html, response_ids = await render_new_turn(
                    self.session.pk, turn_id, control_id, self.shared
                )
                self.known_response = max([self.known_response, *response_ids])
        else:
            return ""
        for response_id in response_ids:
            self.cursors.setdefault(response_log.log_key(response_id), "0-0")
        return html

    async def _pane(self, key: str, batch: response_log.Batch) -> str:
        response_id = response_log.response_id_of(key)
        if batch.ended:
            self.cursors.pop(key, None)
            return await render_final(response_id, batch.last_seq, self.shared)
        return render_batch(response_id, batch)

    async def _check_dead(self) -> None:
        control = response_log.control_key(self.session.pk)
        followed = [response_log.response_id_of(k) for k in self.cursors if k != control]
        if not followed:
            return
        try:
            # Reaping writes an end entry to the log, which the next XREAD picks up.
            await reap_dead(followed)
            ended = await ended_of(followed)
        except Exception as error:
            # No pane can be ended while the database is away (its worker may be waiting
            # for it too, to save the end): the socket goes on following the logs.
            if not is_database_away(error):
                raise
            return
        await self._end_lost(ended)

    async def _end_lost(self, ended: list[int]) -> None:
        """Panes whose rows have ended while their logs' end entries have not come for two
        looks: the entry was lost, so their finished articles come from the rows, as the
        entry would have brought them (else the page would wait until a reload)."""
        now = time.monotonic()
        self.ended_seen = {pk: self.ended_seen.get(pk, now) for pk in ended}
        fragments = []
        for pk, since in list(self.ended_seen.items()):
            if now - since < LOST_END_S:
                continue
            del self.ended_seen[pk]
            cursor = self.cursors.pop(response_log.log_key(pk), None)
            if cursor is not None:
                seq = response_log.seq_of(cursor)
                fragments.append(await render_final(pk, seq, self.shared))
        if fragments:
            await self._send_counted("".join(fragments))


def _valid_id(value: str) -> str:
    ms, _, seq = value.partition("-")
    return value if value.isascii() and ms.isdigit() and (seq.isdigit() or not seq) else "0-0"


def _valid_seq(value: Any) -> int:
    try:
        return min(max(0, int(value)), 2**53)  # Redis stream ids are 64-bit
    except (TypeError, ValueError):
        return 0
