"""The composer's estimate: before Send, what the turn may cost at most (the worst case
Send would reserve) and what is left of the person's limits. It runs as the person types:
reads only, never reserves, never writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from playground import quotas
from playground.access import session_for_user, user_id
from playground.attachments import MAX_IMAGES
from playground.compose import Compose, read_compose
from playground.ledger import usd
from playground.media_limits import MAX_AUDIOS, MAX_FRAMES, MAX_VIDEOS
from playground.quotas import PaneCost, Plan

TEMPLATE = "playground/_estimate.html"
EMPTY_PROMPT = "Write a prompt first."  # read_compose's; an empty prompt still gets one


@dataclass
class Estimate:
    tokens: int
    cost: str  # of the panes whose price is known; "" when none is
    unknown: list[str]  # models whose price is unknown
    free: list[str]  # models that take no key and cost nothing (Echo, the local model)
    limits: list[str] = field(default_factory=list)  # "Your limit: $4.88 of $5.00 left …"
    refusal: str = ""  # what Send would say now, when a limit would refuse the turn

    @property
    def all_free(self) -> bool:
        return bool(self.free) and not self.cost and not self.unknown


@login_required
@require_POST
def estimate(request: HttpRequest, session_id: int | None = None) -> HttpResponse:
    session = session_for_user(request.user, session_id) if session_id is not None else None
    compose = read_compose(request.POST, request.FILES, request.user)
    errors = [e for e in compose.errors if e != EMPTY_PROMPT]
    if errors:
        return render(request, TEMPLATE, {"note": errors[0]})
    _count_image_files(request, compose)
    _count_media_files(request, compose)
    history: dict[int, int] = {}
    if session is not None:
        # The same worst case Send reserves (views.send).
        showing = session.panes.filter(removed=False).annotate(**quotas.HISTORY)
        existing = {p.position: p for p in showing}
        policy = compose.context_policy or session.context_policy
        history = quotas.pane_histories(existing, policy, [p.position for p in compose.panes])
    try:
        plan = quotas.plan_turn(user_id(request.user), compose, history)
    except quotas.QuotaRefused as refused:
        return render(request, TEMPLATE, {"refused": str(refused)})
    return render(request, TEMPLATE, {"estimate": estimate_of(plan)})


def _count_image_files(request: HttpRequest, compose: Compose) -> None:
    """The page sends how many image files are picked, not the files (they would go up
    on every key pressed); each counts in the worst case as an uploaded one would."""
    count = _picked(request, "image_files")
    room = max(0, MAX_IMAGES - len(compose.images))
    compose.images = compose.images + [{}] * min(count, room)


def _picked(request: HttpRequest, field: str) -> int:
    raw = request.POST.get(field, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 3 else 0


def _count_media_files(request: HttpRequest, compose: Compose) -> None:
    """The same for videos, a video's frames and recordings: each picked file counts as
    long as its limit allows (its length is read only once it is sent), as Send's worst
    case would count a file whose length cannot be read."""
    entries = compose.media.entries
    videos = sum(e["kind"] == "video" for e in entries)
    audios = len(entries) - videos
    frames = min(_picked(request, "video_frames_files"), MAX_FRAMES)
    if frames and videos < MAX_VIDEOS:
        entries.append({"kind": "video", "form": "frames", "frames": [{}] * frames})
        videos += 1
    for _ in range(min(_picked(request, "videos_files"), max(0, MAX_VIDEOS - videos))):
        entries.append({"kind": "video", "form": "file"})
    for _ in range(min(_picked(request, "audios_files"), max(0, MAX_AUDIOS - audios))):
        entries.append({"kind": "audio", "form": "file"})


def _free(pane: PaneCost) -> bool:
    """A model that takes no key and costs nothing (or has no price): Echo, the local
    model."""
    return not pane.cost_usd and not pane.key.scope and not pane.model.key_scope


def estimate_of(plan: Plan, now: dt.datetime | None = None) -> Estimate:
    """The plan's worst case in words, what is left of each cap, and what Send would say
    if a limit would refuse it now."""
    free = [p.model.display_name for p in plan.panes if _free(p)]
    unknown = [p.model.display_name for p in plan.panes if p.cost_usd is None and not _free(p)]
    priced = any(p.cost_usd is not None and not _free(p) for p in plan.panes)
    out = Estimate(
        plan.tokens,
        usd(plan.cost_known) if priced else "",
        list(dict.fromkeys(unknown)),
        list(dict.fromkeys(free)),
    )
    lefts = quotas.left_of(plan.caps, now)
    for cap, left in zip(plan.caps, lefts, strict=True):
        parts = []
        if left.spend is not None:
            parts.append(f"{usd(left.spend[0])} of {usd(left.spend[1])} left this month")
        if left.requests is not None:
            parts.append(f"{left.requests[0]:,} of {left.requests[1]:,} answers left today")
        if left.tokens is not None:
            parts.append(f"{left.tokens[0]:,} of {left.tokens[1]:,} tokens left this month")
        if parts:
            out.limits.append(f"{cap.whose} limit: {' · '.join(parts)}")
    try:
        quotas.check_now(plan, now)
    except quotas.QuotaRefused as refused:
        out.refusal = str(refused)
    return out
