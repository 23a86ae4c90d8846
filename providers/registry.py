"""Provider names mapped to their classes, imported only when first asked for."""

from __future__ import annotations

import importlib

from providers.base import Provider

# name -> "module:Class"; modules are imported lazily so one broken vendor cannot stop others.
PROVIDERS: dict[str, str] = {
    "echo": "providers.echo:Echo",
    "openai": "providers.openai_compat:OpenAI",
    "openai_compatible": "providers.openai_compat:OpenAICompatible",
    "local": "providers.openai_compat:LlamaCpp",
    "deepseek": "providers.openai_compat:DeepSeek",
    "xai": "providers.openai_compat:XAI",
    "qwen": "providers.dashscope:QwenCompatible",
    "qwen_native": "providers.dashscope:QwenNative",
    "zhipu": "providers.zhipu:Zhipu",
    "baichuan": "providers.baichuan:Baichuan",
    "spark": "providers.spark:Spark",
    "spark_http": "providers.spark:SparkHTTP",
    "pangu": "providers.pangu:Pangu",
    "qianfan": "providers.qianfan:Qianfan",
    "qianfan_v1": "providers.qianfan:QianfanV1",
    "hunyuan": "providers.hunyuan:Hunyuan",
    "hunyuan_compatible": "providers.hunyuan:HunyuanCompatible",
    "ollama_native": "providers.ollama:Ollama",
    "llama_api": "providers.llama_api:LlamaAPI",
    "llama_api_compatible": "providers.llama_api:LlamaAPICompatible",
    "ollama": "providers.openai_compat:OllamaOpenAI",
    "anthropic": "providers.anthropic:Anthropic",
    "gemini": "providers.gemini:Gemini",
}


class UnknownProvider(LookupError):
    pass


def provider_class(name: str) -> type[Provider]:
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(f"Unknown provider: {name!r}.") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def get_provider(name: str) -> Provider:
    return provider_class(name)()
