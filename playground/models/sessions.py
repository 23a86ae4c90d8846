"""Sessions, their panes, turns and the responses that stream into the panes.

A session holds panes side by side (one model with its parameters each). Every prompt the
person sends is a turn; a turn has one response per pane. A pane's history is its own
responses, so each model keeps its own conversation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ContextPolicy(models.TextChoices):
    """What each pane's model is given as the conversation so far."""

    OWN = "own", "Each model keeps its own answers"
    CHOSEN = "chosen", "Only the chosen answer goes to every model"
    ALL = "all", "All answers go to every model, except excluded ones"


class Session(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sessions"
    )
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    pinned = models.BooleanField(default=False)
    context_policy = models.CharField(
        max_length=8, choices=ContextPolicy.choices, default=ContextPolicy.OWN
    )
    # Deleted by its owner: hidden at once, gone for good after the undo window
    # (playground.session_list); while it is set, nothing reaches the session.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Where a fork or a duplicate came from, and the last turn it copied (None: all).
    forked_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    forked_at_turn = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-pinned", "-updated_at"], name="session_list")]

    def __str__(self) -> str:
        return self.title or f"Session {self.pk}"


class Pane(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="panes")
    position = models.PositiveSmallIntegerField()
    model_key = models.CharField(max_length=300)  # a catalog key, or mine:<endpoint>:<model>
    params = models.JSONField(default=dict, blank=True)
    removed = models.BooleanField(default=False)
    # The key the person picked for this pane; empty: the first that applies (their own,
    # the active team's, the organisation's, the site environment's).
    credential = models.ForeignKey(
        "playground.Credential", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            # A removed pane keeps its row (and its answers, for the record); a model added
            # later at the same place gets a new row, so a removed pane's history never
            # becomes another model's.
            models.UniqueConstraint(
                fields=["session", "position"],
                condition=models.Q(removed=False),
                name="pane_position_unique",
            )
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
    # Videos and recordings (playground.media): {"kind": "video"|"audio", "form":
    # "file"|"url"|"frames", ...}; a file's bytes are a MediaFile, named by "sha256".
    media = models.JSONField(default=list, blank=True)
    # The team the person had active when they sent it: whose keys and quota it used.
    team = models.ForeignKey(
        "playground.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The answer the person chose to continue from (the "chosen" context policy, and
    # "Continue with this answer"): every pane's history holds it for this turn.
    chosen = models.ForeignKey(
        "playground.Response", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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
    # Which key answered, chosen at Send (playground.credentials): the row (None for the
    # site environment's or a keyless model), its owner's kind and the words the pane shows.
    credential = models.ForeignKey(
        "playground.Credential", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    key_scope = models.CharField(max_length=8, blank=True)
    key_label = models.CharField(max_length=120, blank=True)
    # What Send reserved against the quotas that apply (playground.quotas): the worst case,
    # and the counters it was added to; given back, less what was used, when it ends.
    reserved_tokens = models.PositiveIntegerField(default=0)
    reserved_cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    quota_counters = models.JSONField(default=list, blank=True)
    # Left out of every pane's history under the "all answers" context policy.
    excluded = models.BooleanField(default=False)
    # A later answer of the same pane to the same turn (Regenerate, Retry) replaced this
    # one: it stays on record but is no longer the pane's answer nor anyone's history.
    replaced = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["turn__index", "pane__position"]
        indexes = [
            # Fair use counts a person's turns still answering on every Send.
            models.Index(
                fields=["status"],
                condition=models.Q(status__in=["pending", "streaming"]),
                name="response_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name} on {self.turn}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES
