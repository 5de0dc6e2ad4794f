"""The LLM backend interface every serving engine implements.

Chat messages in, text out (whole or streamed), with greedy or sampled decoding, a token budget, stop strings, and
a per-request choice of LoRA adapter by serving name (None = the base model). Adapters are loaded and unloaded at
run time. This module holds only types and the contract; it loads no model.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypedDict


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy: evaluation and the agent's default
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def row_configs(n: int, config: GenerationConfig, budgets: Sequence[int] | None) -> list[GenerationConfig]:
    """Each of `n` conversations' config: `config` with the row's own token budget where given (never above it)."""
    if budgets is None:
        return [config] * n
    if len(budgets) != n or any(b < 1 for b in budgets):
        raise ValueError("budgets needs one value >= 1 per conversation")
    return [replace(config, max_new_tokens=min(int(b), config.max_new_tokens)) for b in budgets]


@dataclass
class Generation:
    text: str
    adapter: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: Literal["stop", "length"] = "stop"
    extra: dict = field(default_factory=dict)


class LLMBackend(abc.ABC):
    """Thread-safe: many requests may call generate/stream at once, each naming its own adapter."""

    name: str = "backend"

    @abc.abstractmethod
    def generate(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Generation: ...

    @abc.abstractmethod
    def stream(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Iterator[str]:
        """Yield text pieces as they are decoded; joined they equal generate()'s text."""

    @abc.abstractmethod
    def load_adapter(self, name: str, path: str) -> None:
        """Load a PEFT adapter folder under a serving name; a name is never reused for different weights."""

    @abc.abstractmethod
    def unload_adapter(self, name: str) -> None:
        """Unload after requests in flight on it finish."""

    @abc.abstractmethod
    def adapters(self) -> list[str]: ...

    def generate_batch(
        self, batch: Sequence[Sequence[ChatMessage]], config: GenerationConfig | None = None, adapter: str | None = None,
        *, drafts: Sequence[str | None] | None = None, budgets: Sequence[int] | None = None,
    ) -> list[Generation]:
        """Answer many conversations with one adapter (evaluation, filtering); engines that batch override this.
        `drafts`: an expected reply per conversation, which a backend may verify in one pass instead of decoding
        token by token; the answers are the same with or without them (here they are ignored). `budgets`: each
        conversation's own max_new_tokens, at most the config's."""
        configs = row_configs(len(batch), config or GenerationConfig(), budgets)
        return [self.generate(messages, row, adapter) for messages, row in zip(batch, configs)]

    def score_continuations(
        self, prompt: str, continuations: Sequence[str], adapter: str | None = None
    ) -> list[tuple[float, int]]:
        """(sum of log-probabilities, token count) of each continuation after a raw-text prompt, no chat
        template: the lm-eval-harness way of scoring multiple choice (ARC, the golden set)."""
        raise NotImplementedError(f"{self.name} cannot score continuations")

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by this backend's tokenizer (a word count where it has none)."""
        return len(text.split())

    def info(self) -> dict:
        return {"backend": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
