"""Sessions, their panes, turns and the responses that stream into the panes.

A session holds panes side by side (one model with its parameters each). Every prompt the
person sends is a turn; a turn has one response per pane. A pane's history is its own
responses, so each model keeps its own conversation.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from providers.registry import PROVIDERS


class Session(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sessions"
    )
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title or f"Session {self.pk}"


class Pane(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="panes")
    position = models.PositiveSmallIntegerField()
    model_key = models.CharField(max_length=300)  # a catalog key, or mine:<endpoint>:<model>
    params = models.JSONField(default=dict, blank=True)
    removed = models.BooleanField(default=False)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="pane_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model_key} (pane {self.position + 1})"


class Turn(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    prompt = models.TextField()
    system_prompt = models.TextField(blank=True)
    # Tool definitions ({"name", "description", "parameters"}) offered to every pane, and
    # images ({"url"} or {"data", "mime_type"}) sent with the prompt.
    tools = models.JSONField(default=list, blank=True)
    images = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="turn_index_unique")
        ]

    def __str__(self) -> str:
        return f"Turn {self.index + 1} of {self.session}"


class Status(models.TextChoices):
    PENDING = "pending", "Queued"
    STREAMING = "streaming", "Streaming"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Error"
    INTERRUPTED = "interrupted", "Interrupted"


ACTIVE_STATUSES = (Status.PENDING, Status.STREAMING)


class Response(models.Model):
    """One model's answer to one turn. Written when it starts and when it ends; while it
    streams, the response's log in Redis is the record (see playground.live.response_log)."""

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="responses")
    pane = models.ForeignKey(Pane, on_delete=models.CASCADE, related_name="responses")
    model_key = models.CharField(max_length=300)
    display_name = models.CharField(max_length=300)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    finish_reason = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(default=False)
    # Time to first token counts from the call to the model: time spent before it, waiting
    # for the endpoint's slot or the key's rate limit, is ``waited_ms`` (0: it went at once),
    # so that side by side the panes compare the models, not their places in a queue.
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    waited_ms = models.PositiveIntegerField(default=0)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    cost_currency = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["turn__index", "pane__position"]

    def __str__(self) -> str:
        return f"{self.display_name} on {self.turn}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


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
