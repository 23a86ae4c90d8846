"""The catalog of models people can pick, their prices, and the client-side rate limits
per provider; a person's own OpenAI-compatible endpoints."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from providers.registry import PROVIDERS


class Currency(models.TextChoices):
    USD = "USD", "US dollar"
    CNY = "CNY", "Chinese yuan"
    EUR = "EUR", "Euro"


def validate_provider(name: str) -> None:
    if name not in PROVIDERS:
        raise ValidationError(f"Unknown provider; one of: {', '.join(sorted(PROVIDERS))}.")


class CatalogEntry(models.Model):
    """A model people can pick: which provider serves it, what it can do, what it costs.

    Admin-editable; seeded by a migration. ``base_url`` empty means the provider's default
    (or the ``PLAYGROUND_<PROVIDER>_BASE_URL`` override); admins may point an entry at any
    server, loopback included (Ollama, the local model, a gateway).
    """

    key = models.CharField(
        max_length=200,
        unique=True,
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9:._-]*$", "Lower-case letters, digits and : . _ -")
        ],
        help_text="Stable id, e.g. openai:gpt-5.",
    )
    display_name = models.CharField(max_length=200)
    provider = models.CharField(
        max_length=50,
        validators=[validate_provider],
        help_text="The adapter that speaks this model's wire format, e.g. openai, anthropic.",
    )
    model_id = models.CharField(max_length=200, help_text="What the provider's API calls it.")
    base_url = models.URLField(max_length=500, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    vision = models.BooleanField(default=False, help_text="Accepts images.")
    video = models.BooleanField(
        default=False, help_text="Accepts videos (as its API takes them: file, URL or frames)."
    )
    audio = models.BooleanField(default=False, help_text="Accepts recordings (audio input).")
    tools = models.BooleanField(default=False, help_text="Can call tools (functions).")
    reasoning = models.BooleanField(default=False, help_text="Streams its reasoning.")
    web_search = models.BooleanField(default=False)
    input_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Price per million input tokens; empty when unknown.",
    )
    output_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Price per million output tokens (reasoning included); empty when unknown.",
    )
    audio_input_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Price per million audio input tokens, where the provider prices them "
        "apart and reports them; empty = the input price.",
    )
    video_input_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Price per million video input tokens, where the provider prices them "
        "apart and reports them; empty = the input price.",
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    concurrency = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests in flight at once; empty = the default."
    )
    defaults = models.JSONField(default=dict, blank=True, help_text="Default parameters.")
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=100, help_text="Order in the model picker.")

    class Meta:
        ordering = ["position", "display_name"]
        verbose_name = "catalog model"

    def __str__(self) -> str:
        return self.display_name


class RateLimit(models.Model):
    """Client-side limits per credential of a provider, so a team does not trip the
    provider's own. Shared by every worker through Redis; empty means no limit."""

    provider = models.CharField(max_length=50, unique=True, validators=[validate_provider])
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Input plus expected output tokens."
    )

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.provider}: {self.requests_per_minute or '∞'} req/min, " + (
            f"{self.tokens_per_minute or '∞'} tokens/min"
        )


class CustomEndpoint(models.Model):
    """A person's own OpenAI-compatible server (vLLM, LM Studio, OpenRouter, a gateway):
    its models show in that person's Model picker only.

    The API key is kept in the vault's form only (``playground.vault``): ciphertext and a
    hint of its last characters. It is sent only to ``base_url``, the URL it was saved with.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="endpoints"
    )
    name = models.CharField(max_length=80)
    base_url = models.CharField(max_length=500)
    key_ciphertext = models.TextField(blank=True)
    key_hint = models.CharField(max_length=8, blank=True)
    model_ids = models.JSONField(default=list)
    # Shared with a team: its members pick its models too (the key stays write-only, sent
    # only to base_url, and is charged to the team's quota like a team key).
    team = models.ForeignKey(
        "playground.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="endpoints",
        help_text="Shared with this team's members.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="endpoint_name_unique")
        ]
        verbose_name = "custom endpoint"

    def __str__(self) -> str:
        return self.name

    @property
    def has_key(self) -> bool:
        return bool(self.key_ciphertext)
