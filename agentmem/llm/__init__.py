"""LLM backends: one interface (`base.LLMBackend`), an in-process transformers+PEFT implementation, a client of a
vLLM server, and a factory.

`open_backend(settings)` picks the implementation from `settings.llm_backend` (AGENTMEM_LLM_BACKEND). This package
does not know about pools, retrieval or the registry: callers name adapters by their serving name.
"""

from __future__ import annotations

from agentmem.llm.base import ChatMessage, Generation, GenerationConfig, LLMBackend
from agentmem.settings import Settings

__all__ = ["ChatMessage", "Generation", "GenerationConfig", "LLMBackend", "open_backend"]


def open_backend(settings: Settings) -> LLMBackend:
    if settings.llm_backend == "vllm":
        from agentmem.llm.vllm_backend import VLLMBackend

        return VLLMBackend.from_settings(settings)
    from agentmem.llm.transformers_backend import TransformersBackend

    return TransformersBackend.from_settings(settings)
