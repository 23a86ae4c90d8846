"""Provider keys in the vault, owned by a person, a team or the organisation.

A credential holds the parts its provider's adapter declares (``Provider.credential_parts``),
encrypted together as one vault token bound to this row (``playground.vault.seal``): its
uid, owner, provider and base URL. A token copied into another row, or a row whose base
URL was changed in the database, does not open. Only the worker opens one, just before a
call; every screen shows the label, owner and the last four characters only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from playground.models.catalog import validate_provider


class Scope(models.TextChoices):
    USER = "user", "Personal"
    TEAM = "team", "Team"
    ORG = "org", "Organisation"
    ENV = "env", "Site environment"  # the environment variables: no row


class Credential(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=50, validators=[validate_provider])
    label = models.CharField(max_length=80)
    scope = models.CharField(max_length=8, choices=Scope.choices[:3], default=Scope.USER)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="credentials",
    )
    team = models.ForeignKey(
        "playground.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="credentials",
    )
    base_url = models.CharField(
        max_length=500, help_text="The only server this credential is ever sent to."
    )
    ciphertext = models.TextField(editable=False)
    hint = models.CharField(max_length=8, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    tested_at = models.DateTimeField(null=True, blank=True, editable=False)
    test_passed = models.BooleanField(null=True, blank=True, editable=False)
    test_message = models.CharField(max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["provider", "label"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="user", user__isnull=False, team__isnull=True)
                    | Q(scope="team", team__isnull=False, user__isnull=True)
                    | Q(scope="org", team__isnull=True, user__isnull=True)
                ),
                name="credential_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.provider}, {self.owner_name}) {self.hint}"

    @property
    def owner_name(self) -> str:
        if self.scope == Scope.USER:
            return str(self.user)
        if self.scope == Scope.TEAM:
            return f"team {self.team}"
        return "organisation"

    @property
    def binding(self) -> str:
        """What the vault token is bound to: this row, its owner, provider and server."""
        owner = self.user_id if self.scope == Scope.USER else self.team_id
        return f"credential|{self.uid}|{self.scope}:{owner or ''}|{self.provider}|{self.base_url}"
