"""LLM backends: one interface (`base.LLMBackend`), an in-process transformers+PEFT implementation, and a factory.

`open_backend(settings)` picks the implementation from `settings.llm_backend`. This package does not know about
pools, retrieval or the registry: callers name adapters by their serving name.
"""

from __future__ import annotations

from agentmem.llm.base import ChatMessage, Generation, GenerationConfig, LLMBackend
from agentmem.settings import Settings

__all__ = ["ChatMessage", "Generation", "GenerationConfig", "LLMBackend", "open_backend"]


def open_backend(settings: Settings) -> LLMBackend:
    if settings.llm_backend == "transformers":
        from agentmem.llm.transformers_backend import TransformersBackend

        return TransformersBackend.from_settings(settings)
    from agentmem.errors import ConfigError

    raise ConfigError(f"the LLM backend {settings.llm_backend!r} is not available yet", "use AGENTMEM_LLM_BACKEND=transformers")
