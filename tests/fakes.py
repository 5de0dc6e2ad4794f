"""Deterministic fakes for unit tests (never shipped in the package).

FakeBackend answers from a table of (substring -> answer) rules, per adapter, so tests can check which adapter
answered and what the agent did with the text, without loading a model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from agentmem.llm.base import ChatMessage, Generation, GenerationConfig, LLMBackend
from agentmem.llm.stops import trim_at_stop


class FakeBackend(LLMBackend):
    name = "fake"

    def __init__(self, rules: dict[str, str] | None = None, default: str = "I don't know."):
        self.rules: dict[str | None, dict[str, str]] = {None: dict(rules or {})}
        self.default = default
        self.calls: list[tuple[list[ChatMessage], str | None]] = []
        self._loaded: dict[str, str] = {}
        self._lock = threading.Lock()

    def teach(self, adapter: str | None, rules: dict[str, str]) -> None:
        self.rules.setdefault(adapter, {}).update(rules)

    def _answer(self, messages: Sequence[ChatMessage], adapter: str | None) -> str:
        if adapter is not None and adapter not in self._loaded:
            raise KeyError(f"adapter {adapter} not loaded")
        prompt = "\n".join(m["content"] for m in messages)
        for table in (self.rules.get(adapter, {}), self.rules[None]):
            for key, answer in table.items():
                if key.lower() in prompt.lower():
                    return answer
        return self.default

    def generate(self, messages, config: GenerationConfig | None = None, adapter=None) -> Generation:
        config = config or GenerationConfig()
        with self._lock:
            self.calls.append((list(messages), adapter))
        text, _ = trim_at_stop(self._answer(messages, adapter), config.stop)
        words = text.split()[: config.max_new_tokens]
        return Generation(text=" ".join(words), adapter=adapter, completion_tokens=len(words))

    def stream(self, messages, config=None, adapter=None) -> Iterator[str]:
        text = self.generate(messages, config, adapter).text
        for i, word in enumerate(text.split(" ")):
            yield word if i == 0 else " " + word

    def load_adapter(self, name: str, path: str) -> None:
        self._loaded[name] = path

    def unload_adapter(self, name: str) -> None:
        self._loaded.pop(name, None)

    def adapters(self) -> list[str]:
        return sorted(self._loaded)
