"""Steering a session between turns (playground.steering): regenerate, retry the failed
panes, continue from a chosen answer, leave an answer out, the context policy, and fork."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from playground import quotas, rematch, steering
from playground.access import response_for_user, session_for_user, user_id
from playground.forking import fork_session
from playground.live.announce import announce_answers
from playground.models import Response, Session
from playground.pane_view import response_context
from playground.tasks import hand_to_worker, run_turn


def _sentence(request: HttpRequest, message: str) -> HttpResponse:
    """A refusal, shown where Send's are; nothing changed."""
    response = render(request, "playground/_errors.html", {"errors": [message]})
    return reswap(retarget(response, "#compose-errors"), "innerHTML")


def _articles(*answers: Response | None) -> HttpResponse:
    """The answers' articles again, swapped in place (their marks changed)."""
    html = "".join(
        render_to_string("playground/_response.html#oob-response", {"r": response_context(r)})
        for r in answers
        if r is not None
    )
    return reswap(retarget(HttpResponse(html), "#compose-errors"), "none")


@login_required
@require_POST
def regenerate(request: HttpRequest, response_id: int) -> HttpResponse:
    answer = response_for_user(request.user, response_id)
    return _rerun(request, answer.turn.session, [answer])


@login_required
@require_POST
def retry_failed(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    failed = steering.failed_answers(session)
    if not failed:
        return _sentence(request, "No pane's last answer failed; there is nothing to retry.")
    return _rerun(request, session, failed)


def _rerun(request: HttpRequest, session: Session, old: list[Response]) -> HttpResponse:
    """Answer again, hand the new answers to a worker (ids only) and tell the pages."""
    try:
        new = steering.rerun(request.user, session, old)
    except (steering.SteerRefused, quotas.QuotaRefused) as refused:
        return _sentence(request, str(refused))
    ids = [r.pk for r in new]
    hand_to_worker(ids, run_turn, new[0].turn_id, ids)
    announce_answers(session.pk, new, replacing=old)
    response = reswap(retarget(HttpResponse(""), "#compose-errors"), "innerHTML")
    return trigger_client_event(response, "turn-sent")


@login_required
@require_POST
def choose(request: HttpRequest, response_id: int) -> HttpResponse:
    """Continue from this answer (again: no longer). With ``only``, the page then asks
    only this answer's pane."""
    answer = response_for_user(request.user, response_id)
    try:
        before = steering.choose(answer.turn.session, answer)
    except steering.SteerRefused as refused:
        return _sentence(request, str(refused))
    answer.turn.refresh_from_db(fields=["chosen"])
    if before is not None:
        before = response_for_user(request.user, before.pk)
    response = _articles(answer, before)
    if request.GET.get("only") and answer.turn.chosen_id == answer.pk:
        response = trigger_client_event(response, "ask-only", {"position": answer.pane.position})
    return response


@login_required
@require_POST
def exclude(request: HttpRequest, response_id: int) -> HttpResponse:
    answer = response_for_user(request.user, response_id)
    steering.set_excluded(answer, not answer.excluded)
    return _articles(answer)


@login_required
@require_POST
def context_policy(request: HttpRequest, session_id: int) -> HttpResponse:
    session = session_for_user(request.user, session_id)
    try:
        steering.set_policy(session, request.POST.get("context_policy", ""))
    except steering.SteerRefused as refused:
        return _sentence(request, str(refused))
    response = reswap(retarget(HttpResponse(""), "#compose-errors"), "innerHTML")
    return trigger_client_event(response, "policy-changed", {"policy": session.context_policy})


@login_required
@require_POST
def fork(request: HttpRequest, session_id: int) -> HttpResponse:
    """A new session of the person's starting from turn ``turn`` (0-based) of this one."""
    session = session_for_user(request.user, session_id)
    raw = request.GET.get("turn", request.POST.get("turn", ""))
    through = int(raw) if raw.isascii() and raw.isdigit() else None
    if through is not None and not session.turns.filter(index=through).exists():
        return _sentence(request, "That turn is not in this session.")
    title = session.title or "Session"
    suffix = f" (fork at turn {through + 1})" if through is not None else " (fork)"
    copy = fork_session(session, user_id(request.user), through, title=title[:170] + suffix)
    return HttpResponseClientRedirect(reverse("session", args=[copy.pk]))


@login_required
@require_POST
def rematch_session(request: HttpRequest, session_id: int) -> HttpResponse:
    """Every turn of this session asked again of the models picked, in a new session beside
    the answers it has."""
    session = session_for_user(request.user, session_id)
    try:
        copy = rematch.start(request.user, session, request.POST.getlist("rematch-model"))
    except rematch.RematchRefused as refused:
        return _sentence(request, str(refused))
    return HttpResponseClientRedirect(reverse("session", args=[copy.pk]))
