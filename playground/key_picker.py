"""A pane's key picker: the saved keys a person may pick for the pane's model, read once
when a page or a pane is rendered (one query), never at Send, where ``KeyChooser`` checks
the pick against the same rule: the model's provider, and the very server it is reached at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from playground.catalog import CatalogModel
from playground.credentials import (
    KeyChooser,
    KeyRefused,
    model_base_url,
    says,
    usable_credentials,
)
from playground.models import Credential, Scope
from playground.teams import active_team

_SCOPE_ORDER: dict[str, int] = {Scope.USER: 0, Scope.TEAM: 1, Scope.ORG: 2}


def takes_key(model: CatalogModel | None) -> bool:
    """Whether a pane of ``model`` has a Key select: a model whose provider takes a key,
    not one of an endpoint (which brings its own)."""
    if model is None or model.key_scope:
        return False
    return bool(model.provider_class.credential_parts())


@dataclass(frozen=True)
class KeyOption:
    value: int
    text: str  # "team key 'research' …abcd": whose, its label, its last characters
    selected: bool


@dataclass(frozen=True)
class KeyPicker:
    """What the pane's Key select shows. ``automatic``: the words of the key "Automatic"
    would use now ("your key 'work'", "site environment"). ``lost``: the key picked for the
    pane earlier is no longer one it may use; it stays selected, so that Send says so
    instead of quietly answering with another key."""

    automatic: str
    options: list[KeyOption]
    picked: int | None = None
    lost: bool = False


@dataclass
class PaneKeys:
    """The keys a person may pick in their panes, and their active team."""

    chooser: KeyChooser

    @classmethod
    def load(cls, user: Any) -> PaneKeys:
        if user is None or not user.is_authenticated:
            return cls.none()
        team = active_team(user)
        rows = list(
            usable_credentials(user.pk).only(
                "pk", "provider", "label", "scope", "user_id", "team_id", "base_url", "hint"
            )
        )
        rows.sort(key=lambda c: (_SCOPE_ORDER.get(c.scope, 3), c.label.lower(), c.pk))
        return cls(KeyChooser(user.pk, team.pk if team else None, rows))

    @classmethod
    def none(cls) -> PaneKeys:
        return cls(KeyChooser(0, None, []))

    def fitting(self, model: CatalogModel) -> list[Credential]:
        url = model_base_url(model)
        return [c for c in self.chooser.rows if c.provider == model.provider and c.base_url == url]

    def keyed(self, models: Iterable[CatalogModel]) -> frozenset[str]:
        """The models a saved key of this person answers for: the Model picker offers
        them even when the site has no key of its own for them."""
        covered = {(c.provider, c.base_url) for c in self.chooser.rows}
        if not covered:
            return frozenset()
        return frozenset(
            m.key for m in models if not m.key_scope and (m.provider, model_base_url(m)) in covered
        )

    def picker(
        self, model: CatalogModel | None, picked: int | None = None, keep_lost: bool = True
    ) -> KeyPicker | None:
        """The Key select of a pane of ``model``; None for a model that takes no key, or
        brings its own (an endpoint's). ``keep_lost``: False when the model was just
        changed, so that a key picked for the previous one falls back to Automatic."""
        if model is None or not takes_key(model):
            return None
        fits = self.fitting(model)
        if picked is not None and all(c.pk != picked for c in fits) and not keep_lost:
            picked = None
        try:
            automatic = self.chooser.choose(model).says or "no key"
        except KeyRefused:
            automatic = "none yet: add a key under Keys"
        options = [
            KeyOption(c.pk, f"{says(c.scope, c.label)} {c.hint}".rstrip(), c.pk == picked)
            for c in fits
        ]
        lost = picked is not None and not any(o.selected for o in options)
        return KeyPicker(automatic, options, picked, lost)
