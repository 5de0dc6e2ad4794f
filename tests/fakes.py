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


class FakeHit:
    def __init__(self, text, score, source, pool, chunk_id, metadata=None, title="", section=""):
        self.text, self.score, self.source, self.pool, self.chunk_id = text, score, source, pool, chunk_id
        self.metadata = metadata or {}
        self.title, self.section = title, section
        self.page = self.line_start = self.line_end = None


_STOP = {"the", "a", "an", "is", "of", "what", "who", "which", "in", "was", "to", "and", "does", "do", "did", "?"}


def _words(text: str) -> set[str]:
    import re

    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


class FakeKnowledge:
    """Documents and memories per pool, scored by the share of the query's content words they contain."""

    def __init__(self):
        self.docs: dict[str, list[tuple[str, str]]] = {}
        self.memories: dict[str, dict[str, str]] = {}

    def add_document(self, pool: str, source: str, text: str) -> None:
        self.docs.setdefault(pool, []).append((source, text))

    def _score(self, query: str, text: str) -> float:
        q = _words(query)
        return len(q & _words(text)) / len(q) if q else 0.0

    def search(self, query, pool, k=4, where=None):
        hits = [FakeHit(t, self._score(query, t), src, pool, f"{src}#0", title=src)
                for src, t in self.docs.get(pool, [])]
        return sorted(hits, key=lambda h: -h.score)[:k]

    def search_memory(self, query, pool, k=4):
        hits = [FakeHit(t, self._score(query, t), f"memory:{fid}", pool, fid, {"fact_id": fid})
                for fid, t in self.memories.get(pool, {}).items()]
        return sorted(hits, key=lambda h: -h.score)[:k]

    def remember(self, pool, fact_id, text, metadata=None):
        self.memories.setdefault(pool, {})[fact_id] = text

    def forget(self, pool, fact_id):
        self.memories.get(pool, {}).pop(fact_id, None)

    def memory_ids(self, pool):
        return set(self.memories.get(pool, {}))
