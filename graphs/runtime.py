"""The product's real parts, assembled once per process: backend, knowledge base, memory log, adapter registry,
adapter serving, checkpointer and the agent.

The CLI builds one per command, the app one per server. Parts load lazily (the model only when something is asked)
so quick commands stay quick. This module makes no decisions of its own; it only wires.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from agentmem.llm import LLMBackend, open_backend
from agentmem.memory import open_memory_log
from agentmem.registry import open_registry
from agentmem.serving import AdapterServing
from agentmem.settings import Settings
from graphs.agent import Agent, open_checkpointer
from graphs.deps import AgentDeps
from graphs.facts import sync_memory
from indexes.store import KnowledgeBase, open_store

log = logging.getLogger(__name__)


class AgentRuntime:
    def __init__(self, settings: Settings, *, backend: LLMBackend | None = None):
        self.settings = settings
        self._backend = backend
        self._lock = threading.Lock()

    @property
    def backend(self) -> LLMBackend:
        with self._lock:
            if self._backend is None:
                self._backend = open_backend(self.settings)
            return self._backend

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        return open_store(self.settings)

    @cached_property
    def memory(self):
        return open_memory_log(self.settings)

    @cached_property
    def registry(self):
        return open_registry(self.settings)

    @cached_property
    def serving(self) -> AdapterServing:
        return AdapterServing(self.backend, self.registry)

    @cached_property
    def agent(self) -> Agent:
        deps = AgentDeps(
            settings=self.settings, llm=self.backend, knowledge=self.knowledge, memory=self.memory,
            adapter_for=self.serving.adapter_for, use_adapter=self.serving.use,
        )
        self.repair_memory()
        return Agent(deps, checkpointer=open_checkpointer(self.settings))

    def repair_memory(self) -> dict[str, tuple[int, int]]:
        """Bring every pool's memory collection in line with the memory log (a crash between the two writes of
        a taught fact leaves the log ahead); cheap when nothing is out of step."""
        repaired = {}
        for pool in self.memory.list_pools():
            written, removed = sync_memory(self.memory, self.knowledge, pool)
            if written or removed:
                log.warning("pool %s: memory collection repaired from the log (+%d, -%d)", pool, written, removed)
                repaired[pool] = (written, removed)
        return repaired

    def close(self) -> None:
        if "memory" in self.__dict__:
            self.memory.close()
        if self._backend is not None:
            self._backend.close()
