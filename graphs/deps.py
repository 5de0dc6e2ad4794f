"""What the agent needs from the rest of the product, injected when the graph is built.

Tests build the graph with fakes (tests/fakes.py); the product builds it with the real backend, knowledge base,
memory log and adapter registry (`graphs.agent.build_agent`). Nothing here constructs a real part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agentmem.llm.base import LLMBackend
from agentmem.settings import Settings


class Knowledge(Protocol):
    """The slice of `indexes` the agent uses: documents and taught-fact memories of a pool."""

    def search(self, query: str, pool: str, k: int = ..., where: dict | None = ...) -> Sequence[Any]: ...
    def search_memory(self, query: str, pool: str, k: int = ...) -> Sequence[Any]: ...
    def remember(self, pool: str, fact_id: str, text: str, metadata: dict | None = ...) -> None: ...
    def forget(self, pool: str, fact_id: str) -> None: ...
    def memory_ids(self, pool: str) -> set[str]: ...


@dataclass
class AgentDeps:
    settings: Settings
    llm: LLMBackend
    knowledge: Knowledge
    memory: Any  # agentmem.memory.MemoryLog
    # pool -> serving name of its active adapter, loaded into `llm` (None: the base model answers)
    adapter_for: Callable[[str], str | None] = lambda pool: None
    # A lease on that adapter for one request (AdapterServing.use): it is not unloaded while leased.
    use_adapter: Callable[[str], contextlib.AbstractContextManager[str | None]] | None = None

    def lease(self, pool: str) -> contextlib.AbstractContextManager[str | None]:
        if self.use_adapter is not None:
            return self.use_adapter(pool)
        return _fixed(self.adapter_for(pool))


@contextlib.contextmanager
def _fixed(name: str | None) -> Iterator[str | None]:
    yield name
