"""Comparison sets: the composer's panes (models and parameters), its system prompt and its
"same parameters" toggle, kept under a name to start new comparisons from; personal, or
shared with one of the owner's teams.

The rules of saving, renaming, sharing and deleting a set, and what a new comparison starts
with (a set, a list of models, or the default panes). Every problem is a sentence, and a
refused change changes nothing. Who may reach a set is ``playground.access``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404, QueryDict
from django.utils import timezone

from playground.access import comparison_set_for_user, user_id
from playground.catalog import CatalogModel, default_pane_models
from playground.compose import (
    apply_first_pane_params,
    pane_positions,
    picked_models,
    read_pane,
    same_params,
    unknown_model,
)
from playground.models import ComparisonSet, Membership
from playground.own_models import models_for_user, parse_model_key
from providers.base import ParamError

MAX_NAME = 120  # ComparisonSet.name's max_length
NOT_YOUR_TEAM = "Share it with one of your teams, or with nobody."
NOT_AVAILABLE = "That set is not available."


class SetRefused(Exception):
    """Why a set was not saved or changed: one sentence per problem."""

    def __init__(self, *problems: str) -> None:
        super().__init__(" ".join(problems))
        self.problems = list(problems)


def taken(name: str) -> str:
    return f"You already have a set named “{name}”."


def check_name(owner_id: int, raw: str, renaming: ComparisonSet | None = None) -> str:
    """``raw`` as a set's name (surrounding spaces dropped), or SetRefused."""
    name = raw.strip()
    if not name:
        raise SetRefused("Give the set a name.")
    if len(name) > MAX_NAME:
        raise SetRefused(f"The name can be at most {MAX_NAME} characters long.")
    if any(not c.isprintable() for c in name):
        raise SetRefused("The name cannot contain control characters.")
    others = ComparisonSet.objects.filter(owner_id=owner_id, name=name)
    if renaming is not None:
        others = others.exclude(pk=renaming.pk)
    if others.exists():
        raise SetRefused(taken(name))
    return name


def check_team(owner_id: int, raw: str) -> int | None:
    """The team a set is shared with: "" for nobody, else one the person is in."""
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        team_id = int(raw)
        if Membership.objects.filter(user_id=owner_id, team_id=team_id).exists():
            return team_id
    raise SetRefused(NOT_YOUR_TEAM)


@dataclass
class SetPanes:
    """What a set keeps of the composer, read and checked."""

    panes: list[dict[str, Any]]
    system_prompt: str
    same_params: bool


def read_set_panes(data: QueryDict, user: Any) -> SetPanes:
    """The composer's panes (each model with its parameters, cleaned as Send cleans them),
    system prompt and toggle, or SetRefused naming every problem."""
    problems: list[str] = []
    system_prompt = data.get("system_prompt", "")
    limit = settings.PLAYGROUND_MAX_PROMPT_CHARS
    if len(system_prompt) > limit:
        problems.append(f"The system prompt is longer than {limit:,} characters.")
    positions = pane_positions(data)
    if not positions:
        problems.append("Add at least one model.")
    elif len(positions) > settings.PLAYGROUND_MAX_PANES:
        problems.append(f"Compare at most {settings.PLAYGROUND_MAX_PANES} models at once.")
    positions = positions[: settings.PLAYGROUND_MAX_PANES]
    models = models_for_user(user, picked=picked_models(data, positions))
    specs = [read_pane(data, position, models) for position in positions]
    same = same_params(data)
    if same:
        apply_first_pane_params(specs)
    panes: list[dict[str, Any]] = []
    for number, spec in enumerate(specs, start=1):
        if spec.model is None:
            problems.append(f"Pane {number}: {unknown_model(spec.model_key)}")
            continue
        try:
            params = spec.model.clean_params(spec.raw_params)
        except ParamError as error:
            problems.append(f"Pane {number}: {error}")
            continue
        panes.append({"model_key": spec.model_key, "params": params})
    if problems:
        raise SetRefused(*problems)
    return SetPanes(panes, system_prompt, same)


def save_set(user: Any, data: QueryDict) -> ComparisonSet:
    """A new set of ``user``'s from the composer's form (``set_name``, ``set_team`` and the
    Send form's panes), or SetRefused; nothing is saved on any problem."""
    owner_id = user_id(user)
    problems: list[str] = []
    name = team_id = None
    try:
        name = check_name(owner_id, data.get("set_name", ""))
    except SetRefused as refused:
        problems += refused.problems
    try:
        team_id = check_team(owner_id, data.get("set_team", ""))
    except SetRefused as refused:
        problems += refused.problems
    try:
        kept = read_set_panes(data, user)
    except SetRefused as refused:
        problems += refused.problems
    if problems:
        raise SetRefused(*problems)
    assert name is not None
    try:
        with transaction.atomic():
            return ComparisonSet.objects.create(
                owner_id=owner_id,
                team_id=team_id,
                name=name,
                panes=kept.panes,
                system_prompt=kept.system_prompt,
                same_params=kept.same_params,
            )
    except IntegrityError:  # the same name saved meanwhile (another tab, a double click)
        raise SetRefused(taken(name)) from None


def rename_set(comparison_set: ComparisonSet, raw: str) -> ComparisonSet:
    name = check_name(comparison_set.owner_id, raw, renaming=comparison_set)
    try:
        with transaction.atomic():
            updated = ComparisonSet.objects.filter(pk=comparison_set.pk).update(
                name=name, updated_at=timezone.now()
            )
    except IntegrityError:
        raise SetRefused(taken(name)) from None
    if not updated:
        raise SetRefused(NOT_AVAILABLE)
    comparison_set.name = name
    return comparison_set


def share_set(comparison_set: ComparisonSet, raw_team: str) -> ComparisonSet:
    """Shares the set with one of its owner's teams ("": with nobody)."""
    team_id = check_team(comparison_set.owner_id, raw_team)
    if not ComparisonSet.objects.filter(pk=comparison_set.pk).update(
        team_id=team_id, updated_at=timezone.now()
    ):
        raise SetRefused(NOT_AVAILABLE)
    comparison_set.refresh_from_db()
    return comparison_set


def describe_pane(pane: Mapping[str, Any], models: Mapping[str, CatalogModel]) -> str:
    """A set's pane in a few words: "Echo (temperature 0.2, repeat 3)"."""
    key = str(pane.get("model_key", ""))
    model = models.get(key)
    name = model.display_name if model else f"{model_name(key)} (not available to you)"
    params = dict(pane.get("params") or {})
    if not params:
        return name
    # In the order the model declares them (the database may keep a JSON object's keys in
    # another order).
    declared = [p.name for p in model.params] if model else []
    names = [n for n in declared if n in params] + sorted(set(params) - set(declared))
    shown = ", ".join(f"{n.replace('_', ' ')} {_value(params[n])}" for n in names)
    return f"{name} ({shown})"


def _value(value: Any) -> str:
    if isinstance(value, list):
        return " / ".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def model_name(key: str) -> str:
    """A model key in the person's words: an endpoint's model by its model id."""
    own = parse_model_key(key)
    return own[1] if own else key


# --------------------------------------------------------------------------- starting


@dataclass
class Start:
    """What a new comparison's page starts with."""

    panes: list[tuple[str, dict[str, Any]]]  # (model key, parameters), in pane order
    system_prompt: str = ""
    same_params: bool = False
    notes: list[str] = field(default_factory=list)  # what could not be filled in, and why
    comparison_set: ComparisonSet | None = None


def start(user: Any, query: QueryDict, models: dict[str, CatalogModel]) -> Start:
    """The panes of a new comparison: a set's (``?set=<id>``), the models listed
    (``?models=a,b``), else the default ones. ``models``: what the person may pick."""
    if "set" in query:
        return _start_from_set(user, query.get("set", ""), models)
    if "models" in query:
        return _start_from_models(query.get("models", ""), models)
    return Start(_defaults(models))


def _defaults(models: dict[str, CatalogModel]) -> list[tuple[str, dict[str, Any]]]:
    return [(key, {}) for key in default_pane_models(models)]


def _start_from_set(user: Any, raw_id: str, models: dict[str, CatalogModel]) -> Start:
    try:
        chosen = comparison_set_for_user(user, raw_id)
    except Http404:
        return Start(_defaults(models), notes=[NOT_AVAILABLE])
    panes: list[tuple[str, dict[str, Any]]] = []
    missing: list[str] = []
    for pane in chosen.panes[: settings.PLAYGROUND_MAX_PANES]:
        key = str(pane.get("model_key", ""))
        if key in models:
            panes.append((key, dict(pane.get("params") or {})))
        else:
            missing.append(model_name(key))
    notes = [_left_out(missing)] if missing else []
    return Start(
        panes or _defaults(models), chosen.system_prompt, chosen.same_params, notes, chosen
    )


def _start_from_models(raw: str, models: dict[str, CatalogModel]) -> Start:
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    known = [key for key in keys if key in models]
    unknown = [model_name(key) for key in keys if key not in models]
    notes = [_left_out(unknown)] if unknown else []
    limit = settings.PLAYGROUND_MAX_PANES
    if len(known) > limit:
        notes.append(f"Compare at most {limit} models at once; the first {limit} are open.")
    panes: list[tuple[str, dict[str, Any]]] = [(key, {}) for key in known[:limit]]
    return Start(panes or _defaults(models), notes=notes)


def _left_out(names: list[str]) -> str:
    listed = ", ".join(f"“{name}”" for name in names)
    if len(names) == 1:
        return f"{listed} is not a model you can pick here; it was left out."
    return f"{listed} are not models you can pick here; they were left out."
