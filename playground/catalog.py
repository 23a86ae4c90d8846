"""The models a person can pick, and how each is reached.

Built from settings once per process. Remote models are listed even without a key so people
see what exists; picking one without a key is refused at Send with a sentence saying how to
add the key. (The admin-editable catalog with prices replaces this list later.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.conf import settings

from providers.base import Param, ParamError, Provider
from providers.registry import provider_class


@dataclass(frozen=True)
class CatalogModel:
    key: str  # stable id used in forms and rows, e.g. "openai:gpt-4.1-mini"
    display_name: str
    provider: str  # providers.registry name
    model_id: str  # what the provider's API calls it
    base_url: str = ""
    concurrency: int = 16  # requests the endpoint serves at once
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def provider_class(self) -> type[Provider]:
        return provider_class(self.provider)

    @property
    def params(self) -> tuple[Param, ...]:
        return self.provider_class.params

    @property
    def endpoint(self) -> str:
        """The key under which concurrency is limited: one per server."""
        return self.base_url or self.provider_class.default_base_url or self.provider

    @property
    def key_env(self) -> str:
        return self.provider_class.key_env

    @property
    def available(self) -> bool:
        cls = self.provider_class
        return not cls.needs_key or bool(os.environ.get(cls.key_env))

    @property
    def unavailable_reason(self) -> str:
        if self.available:
            return ""
        return (
            f"{self.display_name} needs an API key: set {self.key_env} in the environment "
            "of the worker and the web process, then restart."
        )

    def clean_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters, or ParamError naming this model."""
        try:
            return self.provider_class.clean_params(values)
        except ParamError as error:
            raise ParamError(f"{self.display_name}: {error}") from None


# (provider, model id, display name) of the remote models we list by default.
REMOTE_MODELS: tuple[tuple[str, str, str], ...] = (
    ("openai", "gpt-5", "OpenAI · GPT-5"),
    ("openai", "gpt-5-mini", "OpenAI · GPT-5 mini"),
    ("openai", "gpt-4.1-mini", "OpenAI · GPT-4.1 mini"),
    ("anthropic", "claude-sonnet-4-5", "Anthropic · Claude Sonnet 4.5"),
    ("anthropic", "claude-haiku-4-5", "Anthropic · Claude Haiku 4.5"),
    ("gemini", "gemini-2.5-pro", "Google · Gemini 2.5 Pro"),
    ("gemini", "gemini-2.5-flash", "Google · Gemini 2.5 Flash"),
    ("deepseek", "deepseek-chat", "DeepSeek · V3 chat"),
    ("deepseek", "deepseek-reasoner", "DeepSeek · reasoner"),
    ("xai", "grok-4", "xAI · Grok 4"),
    ("qwen", "qwen-plus", "Alibaba · Qwen Plus"),
)


@cache
def catalog() -> dict[str, CatalogModel]:
    models = [CatalogModel("echo", "Echo", "echo", "echo")]
    if settings.PLAYGROUND_LOCAL_MODEL_URL:
        models.append(
            CatalogModel(
                "local:smollm2",
                "Local · SmolLM2-135M",
                "local",
                "smollm2",
                base_url=settings.PLAYGROUND_LOCAL_MODEL_URL,
                concurrency=settings.PLAYGROUND_LOCAL_CONCURRENCY,
                defaults={"max_tokens": 256},
            )
        )
    for provider, model_id, name in REMOTE_MODELS:
        models.append(
            CatalogModel(
                f"{provider}:{model_id}",
                name,
                provider,
                model_id,
                base_url=settings.PLAYGROUND_BASE_URLS.get(provider, ""),
                concurrency=settings.PLAYGROUND_ENDPOINT_CONCURRENCY,
            )
        )
    return {m.key: m for m in models}


def default_pane_models() -> list[str]:
    """What a new comparison starts with: the local model against echo."""
    keys = list(catalog())
    return [k for k in ("local:smollm2", "echo") if k in keys] or keys[:1]
