"""Your endpoints: a person lists, adds, edits and deletes their own OpenAI-compatible
servers, and shares each with one of their teams (or none). One template serves the whole
page and, to htmx, its main part only."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from playground.access import endpoint_for_user, user_id
from playground.forms import EndpointForm
from playground.models import CustomEndpoint
from playground.own_models import model_key
from playground.tasks import ask_connection_check
from playground.views.connection_tests import started

TEMPLATE = "playground/endpoints.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware


def _page(
    request: HtmxHttpRequest, form: EndpointForm, editing: CustomEndpoint | None
) -> HttpResponse:
    endpoints = (
        CustomEndpoint.objects.filter(owner_id=user_id(request.user))
        .select_related("team")
        .only("pk", "name", "base_url", "key_hint", "key_ciphertext", "model_ids", "team__name")
    )
    action = reverse("endpoint_edit", args=[editing.pk]) if editing else reverse("endpoints")
    template = f"{TEMPLATE}#main" if request.htmx else TEMPLATE
    context = {"form": form, "editing": editing, "endpoints": endpoints, "action": action}
    return render(request, template, context)


def _done(request: HtmxHttpRequest, sentence: str) -> HttpResponse:
    """After a change: the list with an empty add form (htmx), or a redirect to it."""
    messages.success(request, sentence)
    if request.htmx:
        page = _page(request, EndpointForm(owner=request.user), None)
        return push_url(page, reverse("endpoints"))
    return redirect("endpoints")


@sensitive_post_parameters("api_key")
@login_required
@require_http_methods(["GET", "POST"])
def endpoint_list(request: HtmxHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, EndpointForm(owner=request.user), None)
    form = EndpointForm(request.POST, owner=request.user)
    if form.is_valid() and (saved := form.save()) is not None:
        return _done(request, f"Saved {saved.name}; its models are in your Model picker.")
    return _page(request, form, None)


@sensitive_post_parameters("api_key")
@login_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = endpoint_for_user(request.user, endpoint_id)
    if request.method != "POST":
        return _page(request, EndpointForm(owner=request.user, endpoint=endpoint), endpoint)
    form = EndpointForm(request.POST, owner=request.user, endpoint=endpoint)
    if form.is_valid() and (saved := form.save()) is not None:
        return _done(request, f"Saved {saved.name}.")
    # The row as saved (a failed save may have changed the object in memory).
    endpoint.refresh_from_db()
    return _page(request, form, endpoint)


@login_required
@require_POST
def endpoint_delete(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = endpoint_for_user(request.user, endpoint_id)
    endpoint.delete()
    return _done(request, f"Deleted {endpoint.name}.")


@login_required
@require_POST
def endpoint_test(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    """Test connection: a worker makes the cheapest call to one of the endpoint's models
    (the one the form names, else the first) with its saved key. Nothing here waits for
    it: the row gets a fragment that asks for the sentence every second
    (views/connection_tests.py), so the click holds none of the request threads."""
    endpoint = endpoint_for_user(request.user, endpoint_id)
    wanted = request.POST.get("model", "")
    model_id = wanted if wanted in endpoint.model_ids else endpoint.model_ids[0]
    me = user_id(request.user)
    back = reverse("endpoints")
    asked = ask_connection_check(me, model_key(endpoint.pk, model_id), owner_id=me, back=back)
    return started(request, asked, back)
