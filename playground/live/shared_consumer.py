"""The websocket of a share link's read-only page (``/ws/shared/<token>/``).

It is the session page's follower (``live/consumer.py``, same protocol, same loop), reached
through the share token instead of the session's id: the token is checked as for the page
(``share_links.open_link``: the one access check, with its count of tries), and the socket
follows that one session's responses and nothing else. It renders for a viewer who is
not the owner (no names of the owner's keys; a new turn's articles rendered here, never the
owner's copy), and it closes (4404) within a few seconds of the link being revoked or
expiring, the session being deleted or the viewer leaving the owner's team.
"""

from __future__ import annotations

import time

from django.http import Http404

from playground.access import share_link_for_viewer
from playground.database_away import SCOPE_KEY
from playground.live.consumer import SessionConsumer
from playground.live.db_threads import off_request_thread
from playground.share_links import TooManyTries, open_link

RECHECK_SECONDS = 2.0  # how soon a revoked link stops a viewer's stream


class SharedSessionConsumer(SessionConsumer):
    shared = True

    async def connect(self) -> None:
        if self.scope.get(SCOPE_KEY):  # the sign-in could not be read
            await self.close_database_away()
            return
        self.user = self.scope.get("user")
        self.token = str(self.scope["url_route"]["kwargs"]["token"])
        client = self.scope.get("client") or ("", 0)
        try:
            link = await off_request_thread(open_link)(self.user, str(client[0]), self.token)
        except TooManyTries:
            await self.close(code=4429)
            return
        except Http404:
            await self.close(code=4404)
            return
        self.session = link.session
        self.checked = time.monotonic()
        await self.start()

    async def still_allowed(self) -> bool:
        if time.monotonic() - self.checked < RECHECK_SECONDS:
            return True
        self.checked = time.monotonic()
        try:
            link = await off_request_thread(share_link_for_viewer)(self.user, self.token)
        except Http404:
            return False
        return link.session_id == self.session.pk
