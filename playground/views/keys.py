"""Keys: a person's own provider keys (/keys/), and a team's (/teams/<id>/keys/), which only
its owners and admins manage; the team's members see its keys in their panes' Key select
only. Keys are write-only: a page shows a key's provider, label, owner, last characters,
who added it, when it was last used and its last test, never the key. One template serves
the whole page and, to htmx, its main part."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from playground import key_form
from playground.access import credential_for_manager, team_for_manager, user_id
from playground.credentials import says, seal_parts
from playground.key_form import KeyForm
from playground.models import MANAGING_ROLES, Credential, Membership, Scope, Team
from playground.tasks import ask_credential_check
from playground.views.connection_tests import started

TEMPLATE = "playground/keys.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware


@dataclass(frozen=True)
class KeyOwner:
    """Whose keys a page lists and adds to: the signed-in person's, or a team's they
    manage."""

    user_id: int
    team: Team | None = None

    @property
    def scope(self) -> str:
        return Scope.TEAM if self.team else Scope.USER

    @property
    def url(self) -> str:
        return reverse("team_keys", args=[self.team.pk]) if self.team else reverse("keys")

    @property
    def whose(self) -> str:
        """The start of the sentence for a label taken."""
        return f"Team {self.team.name} already has" if self.team else "You already have"

    def keys(self) -> QuerySet[Credential]:
        if self.team:
            return Credential.objects.filter(scope=Scope.TEAM, team_id=self.team.pk)
        return Credential.objects.filter(scope=Scope.USER, user_id=self.user_id)

    def new_key(self, form: KeyForm, added_by: int) -> Credential:
        return Credential(
            scope=self.scope,
            user_id=None if self.team else self.user_id,
            team=self.team,
            provider=form.provider,
            label=form.label,
            base_url=form.base_url,
            added_by_id=added_by,
        )


def _owner_of(request: HttpRequest, key: Credential) -> KeyOwner:
    return KeyOwner(user_id(request.user), key.team if key.scope == Scope.TEAM else None)


@dataclass(frozen=True)
class KeyRow:
    key: Credential
    provider_name: str
    says: str  # how a pane's Key select names it: "team key 'research'"


def _page(
    request: HtmxHttpRequest, owner: KeyOwner, form: KeyForm, action: str = ""
) -> HttpResponse:
    rows = owner.keys().select_related("added_by").order_by("provider", "label", "pk")
    keys = [KeyRow(k, key_form.provider_name(k.provider), says(k.scope, k.label)) for k in rows]
    managed = []
    if owner.team is None:  # the teams whose keys this person manages
        managed = list(
            Membership.objects.filter(
                user_id=owner.user_id, role__in=MANAGING_ROLES
            ).select_related("team")
        )
    context = {
        "owner": owner,
        "keys": keys,
        "form": form,
        "action": action or owner.url,
        "managed": managed,
    }
    return render(request, f"{TEMPLATE}#main" if request.htmx else TEMPLATE, context)


def _done(request: HtmxHttpRequest, owner: KeyOwner, sentence: str) -> HttpResponse:
    """After a change: the list with an empty add form (htmx), or a redirect to it."""
    messages.success(request, sentence)
    if request.htmx:
        return push_url(_page(request, owner, key_form.new_form()), owner.url)
    return redirect(owner.url)


def _add(request: HtmxHttpRequest, owner: KeyOwner) -> HttpResponse:
    if request.method != "POST":
        return _page(request, owner, key_form.new_form())
    form, parts = key_form.read_new(request.POST, owner.keys(), owner.whose)
    if form.errors or not parts:
        return _page(request, owner, form)
    key = owner.new_key(form, user_id(request.user))
    seal_parts(key, parts)
    key.save()
    return _done(request, owner, f"Saved {says(key.scope, key.label)} for {form.provider_name}.")


@sensitive_post_parameters()
@login_required
@require_http_methods(["GET", "POST"])
def key_list(request: HtmxHttpRequest) -> HttpResponse:
    """The person's own keys, and the form that adds one."""
    return _add(request, KeyOwner(user_id(request.user)))


@sensitive_post_parameters()
@login_required
@require_http_methods(["GET", "POST"])
def team_keys(request: HtmxHttpRequest, team_id: int) -> HttpResponse:
    """A team's keys, for its owners and admins (anyone else: no such team)."""
    membership = team_for_manager(request.user, team_id)
    return _add(request, KeyOwner(user_id(request.user), membership.team))


@login_required
@require_GET
def key_fields(request: HtmxHttpRequest) -> HttpResponse:
    """The add form's server and part fields for the provider now picked."""
    provider = request.GET.get("provider", "")
    form = key_form.new_form(provider)
    if provider != form.provider:
        form.errors.append("Pick a provider from the list.")
    return render(request, f"{TEMPLATE}#fields", {"form": form, "fields_only": True})


@sensitive_post_parameters()
@login_required
@require_http_methods(["GET", "POST"])
def key_edit(request: HtmxHttpRequest, credential_id: int) -> HttpResponse:
    """Change a key's label, or replace the key (all its parts); it keeps its id, so the
    panes that picked it keep it."""
    key = credential_for_manager(request.user, credential_id)
    owner = _owner_of(request, key)
    action = reverse("key_edit", args=[key.pk])
    if request.method != "POST":
        return _page(request, owner, key_form.edit_form(key), action)
    form, parts = key_form.read_edit(request.POST, key, owner.keys(), owner.whose)
    if form.errors:
        return _page(request, owner, form, action)
    key.label = form.label
    changed = ["label", "updated_at"]
    if parts:
        seal_parts(key, parts)
        changed += ["base_url", "ciphertext", "hint", "test_passed", "tested_at", "test_message"]
    key.save(update_fields=changed)
    what = "replaced the key of" if parts else "saved"
    return _done(request, owner, f"You {what} {says(key.scope, key.label)}.")


@login_required
@require_POST
def key_toggle(request: HtmxHttpRequest, credential_id: int) -> HttpResponse:
    """Disable a key (no pane uses it until it is enabled again), or enable it."""
    key = credential_for_manager(request.user, credential_id)
    # Conditional: a second click on a stale page does not undo the first.
    Credential.objects.filter(pk=key.pk, enabled=key.enabled).update(
        enabled=not key.enabled, updated_at=timezone.now()
    )
    if key.enabled:
        sentence = f"Disabled {says(key.scope, key.label)}: no pane uses it until it is enabled."
    else:
        sentence = f"Enabled {says(key.scope, key.label)}."
    return _done(request, _owner_of(request, key), sentence)


@login_required
@require_POST
def key_delete(request: HtmxHttpRequest, credential_id: int) -> HttpResponse:
    key = credential_for_manager(request.user, credential_id)
    owner = _owner_of(request, key)
    key.delete()
    return _done(request, owner, f"Deleted {says(key.scope, key.label)}.")


@login_required
@require_POST
def key_test(request: HtmxHttpRequest, credential_id: int) -> HttpResponse:
    """Test connection: a worker opens the key and makes the cheapest call with it, and
    records the result on the row. Nothing here waits for it: the row's Last test gets a
    fragment that asks for the sentence every second (views/connection_tests.py)."""
    key = credential_for_manager(request.user, credential_id)
    back = _owner_of(request, key).url
    return started(request, ask_credential_check(user_id(request.user), key.pk, back), back)
