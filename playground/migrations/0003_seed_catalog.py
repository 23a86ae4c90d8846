"""The models a fresh install lists, with the vendors' list prices per million tokens as
published in November 2026 (admins keep them current in Django admin; an empty price means
"unknown", and the pane then shows no cost). Remote models stay listed without a key and
are refused at Send with a sentence saying how to add one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import migrations

D = Decimal
USD, CNY = "USD", "CNY"

# key, display name, provider, model id, context, max output, vision, tools, reasoning,
# web search, input price, output price, currency
SEED: list[tuple[Any, ...]] = [
    ("echo", "Echo", "echo", "echo", None, None, True, True, False, False, D(0), D(0), USD),
    ("local:smollm2", "Local · SmolLM2-135M", "local", "smollm2", 2048, 2048,
     False, False, False, False, D(0), D(0), USD),
    ("openai:gpt-5", "OpenAI · GPT-5", "openai", "gpt-5", 400_000, 128_000,
     True, True, True, False, D("1.25"), D("10"), USD),
    ("openai:gpt-5-mini", "OpenAI · GPT-5 mini", "openai", "gpt-5-mini", 400_000, 128_000,
     True, True, True, False, D("0.25"), D("2"), USD),
    ("openai:gpt-4.1-mini", "OpenAI · GPT-4.1 mini", "openai", "gpt-4.1-mini", 1_047_576,
     32_768, True, True, False, False, D("0.40"), D("1.60"), USD),
    ("anthropic:claude-sonnet-4-5", "Anthropic · Claude Sonnet 4.5", "anthropic",
     "claude-sonnet-4-5", 200_000, 64_000, True, True, True, False, D("3"), D("15"), USD),
    ("anthropic:claude-haiku-4-5", "Anthropic · Claude Haiku 4.5", "anthropic",
     "claude-haiku-4-5", 200_000, 64_000, True, True, True, False, D("1"), D("5"), USD),
    ("gemini:gemini-2.5-pro", "Google · Gemini 2.5 Pro", "gemini", "gemini-2.5-pro",
     1_048_576, 65_536, True, True, True, False, D("1.25"), D("10"), USD),
    ("gemini:gemini-2.5-flash", "Google · Gemini 2.5 Flash", "gemini", "gemini-2.5-flash",
     1_048_576, 65_536, True, True, True, False, D("0.30"), D("2.50"), USD),
    ("xai:grok-4", "xAI · Grok 4", "xai", "grok-4", 256_000, None,
     True, True, True, False, D("3"), D("15"), USD),
    ("xai:grok-3-mini", "xAI · Grok 3 mini", "xai", "grok-3-mini", 131_072, None,
     False, True, True, False, D("0.30"), D("0.50"), USD),
    ("deepseek:deepseek-chat", "DeepSeek · V3 chat", "deepseek", "deepseek-chat", 128_000,
     8_192, False, True, False, False, D("0.28"), D("0.42"), USD),
    ("deepseek:deepseek-reasoner", "DeepSeek · reasoner", "deepseek", "deepseek-reasoner",
     128_000, 65_536, False, False, True, False, D("0.28"), D("0.42"), USD),
    ("qwen:qwen-plus", "Alibaba · Qwen Plus", "qwen", "qwen-plus", 131_072, 16_384,
     False, True, True, True, D("0.8"), D("2"), CNY),
    ("qwen:qwen-max", "Alibaba · Qwen Max", "qwen_native", "qwen-max", 32_768, 8_192,
     False, True, False, True, D("2.4"), D("9.6"), CNY),
    ("zhipu:glm-4.6", "Zhipu · GLM-4.6", "zhipu", "glm-4.6", 200_000, 128_000,
     False, True, True, True, D("2"), D("8"), CNY),
    ("zhipu:glm-4-flash", "Zhipu · GLM-4 Flash", "zhipu", "glm-4-flash", 128_000, 4_096,
     False, True, False, True, D(0), D(0), CNY),
    ("qianfan:ernie-4.5-turbo-128k", "Baidu · ERNIE 4.5 Turbo", "qianfan",
     "ernie-4.5-turbo-128k", 128_000, 12_288, False, True, False, True, D("0.8"), D("3.2"), CNY),
    ("qianfan:ernie-x1-turbo-32k", "Baidu · ERNIE X1 Turbo", "qianfan", "ernie-x1-turbo-32k",
     32_768, 16_384, False, True, True, True, D("1"), D("4"), CNY),
    ("baichuan:Baichuan4-Turbo", "Baichuan · Baichuan4 Turbo", "baichuan", "Baichuan4-Turbo",
     32_768, 4_096, False, True, False, True, D("15"), D("15"), CNY),
    ("llama:llama-4-maverick", "Meta · Llama 4 Maverick", "llama_api",
     "Llama-4-Maverick-17B-128E-Instruct-FP8", 128_000, 4_096,
     True, True, False, False, None, None, USD),
    ("hunyuan:hunyuan-turbos-latest", "Tencent · Hunyuan TurboS", "hunyuan",
     "hunyuan-turbos-latest", 32_000, 16_000, False, True, False, True, D("0.8"), D("2"), CNY),
    ("hunyuan:hunyuan-t1-latest", "Tencent · Hunyuan T1", "hunyuan", "hunyuan-t1-latest",
     64_000, 32_000, False, False, True, False, D("1"), D("4"), CNY),
    ("spark:4.0Ultra", "iFlytek · Spark 4.0 Ultra", "spark", "4.0Ultra", 32_768, 8_192,
     False, True, False, True, None, None, CNY),
    ("pangu:pangu-nlp-n4", "Huawei · Pangu N4", "pangu", "pangu-nlp-n4", 32_768, 4_096,
     False, False, False, False, None, None, CNY),
    ("ollama:llama3.2", "Ollama · Llama 3.2", "ollama_native", "llama3.2", 131_072, None,
     False, True, False, False, D(0), D(0), USD),
]  # fmt: skip

# Listed only once an admin points them at a server (no default endpoint is safe to assume).
DISABLED = {"ollama:llama3.2", "pangu:pangu-nlp-n4"}


def seed(apps: Any, schema_editor: Any) -> None:
    entry = apps.get_model("playground", "CatalogEntry")
    for position, row in enumerate(SEED):
        key, name, provider, model_id, ctx, max_out, vision, tools, reasoning, web = row[:10]
        input_price, output_price, currency = row[10:]
        entry.objects.update_or_create(
            key=key,
            defaults={
                "display_name": name,
                "provider": provider,
                "model_id": model_id,
                "context_window": ctx,
                "max_output_tokens": max_out,
                "vision": vision,
                "tools": tools,
                "reasoning": reasoning,
                "web_search": web,
                "input_price": input_price,
                "output_price": output_price,
                "currency": currency,
                "enabled": key not in DISABLED,
                "position": position,
                "defaults": {"max_tokens": 256} if key == "local:smollm2" else {},
            },
        )


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("playground", "CatalogEntry").objects.filter(
        key__in=[row[0] for row in SEED]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("playground", "0002_catalog")]
    operations = [migrations.RunPython(seed, unseed)]
