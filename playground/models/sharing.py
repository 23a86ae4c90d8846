"""What people keep and hand on beyond one session: share links, comparison sets, and the
site's sharing policy."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


class Audience(models.TextChoices):
    TEAMS = "teams", "Signed-in members of my teams"
    ANYONE = "anyone", "Anyone with the link"


class ShareLink(models.Model):
    """A read-only link to one session. The token itself is shown once, when the link is
    made; only its SHA-256 is kept, so a copy of the database opens nothing."""

    session = models.ForeignKey(
        "playground.Session", on_delete=models.CASCADE, related_name="share_links"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    audience = models.CharField(max_length=8, choices=Audience.choices, default=Audience.TEAMS)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Link to {self.session}"


def hash_token(token: str) -> str:
    """What a share link keeps of its token: the SHA-256, in hex. A link is found by this
    hash (an indexed equality in the database), so a token is never compared in Python."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class ComparisonSet(models.Model):
    """Models with their parameters and a system prompt, kept under a name to start new
    sessions from; personal, or shared with one of the owner's teams."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comparison_sets"
    )
    team = models.ForeignKey(
        "playground.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="comparison_sets",
    )
    name = models.CharField(max_length=120)
    # [{"model_key": ..., "params": {...}}, ...] in pane order.
    panes = models.JSONField(default=list)
    system_prompt = models.TextField(blank=True)
    # One set of parameters for every pane (the composer's "same parameters" toggle).
    same_params = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="comparison_set_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class SitePolicy(models.Model):
    """Site-wide choices an admin makes in Django admin (one row)."""

    allow_public_links = models.BooleanField(
        default=True,
        help_text="Let owners make share links that anyone with the link can open. Off: "
        "links open only for signed-in members of the owner's teams, existing public links "
        "included.",
    )

    class Meta:
        verbose_name = "site policy"
        verbose_name_plural = "site policy"

    def __str__(self) -> str:
        return "Site policy"

    @classmethod
    def current(cls) -> SitePolicy:
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy
