"""Which adapter answers for a pool, kept in step with the registry in a running backend.

`AdapterServing.adapter_for(pool)` reads the pool's active version from the registry (a cheap SQLite read, so a
consolidation or rollback made by another process is picked up on the next request, without a restart), loads
it into the backend under its serving name if needed, and unloads the pool's previous version. The backend's
unload waits for requests in flight on the old adapter. It does not train, evaluate or publish.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterator

from agentmem.errors import AgentmemError
from agentmem.llm.base import LLMBackend
from agentmem.registry import AdapterRegistry

log = logging.getLogger(__name__)


class AdapterServing:
    def __init__(self, backend: LLMBackend, registry: AdapterRegistry):
        self.backend = backend
        self.registry = registry
        self._serving: dict[str, str] = {}  # pool -> serving name loaded for it
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()  # serving name -> requests using it now
        self._drained = threading.Condition()

    @contextlib.contextmanager
    def use(self, pool: str) -> Iterator[str | None]:
        """Lease the pool's adapter for one request: it is not unloaded until the request ends."""
        with self._drained:
            name = self.adapter_for(pool)
            if name:
                self._in_flight[name] += 1
        try:
            yield name
        finally:
            if name:
                with self._drained:
                    self._in_flight[name] -= 1
                    self._drained.notify_all()

    def adapter_for(self, pool: str) -> str | None:
        active = self.registry.active(pool)
        name = active.serving_name if active else None
        if self._serving.get(pool) == name:
            return name
        with self._lock:
            if active is not None and name not in self.backend.adapters():
                self.backend.load_adapter(name, str(active.path))
                log.info("loaded adapter %s for pool %s", name, pool)
            old = self._serving.get(pool)
            if name is None:
                self._serving.pop(pool, None)
            else:
                self._serving[pool] = name
            if old and old != name and old not in self._serving.values():
                self._unload_later(old)
        return name

    def refresh(self, pool: str) -> str | None:
        """Switch the pool to its active version now (after publish, activate or rollback)."""
        return self.adapter_for(pool)

    def _unload_later(self, name: str) -> None:
        # The in-process backend's unload blocks until the request in flight finishes; a request that picked
        # the old name just before the switch keeps it. Do it off the caller's thread so a switch never waits.
        def run() -> None:
            with self._drained:
                self._drained.wait_for(lambda: self._in_flight[name] <= 0)
                del self._in_flight[name]
            try:
                self.backend.unload_adapter(name)
                log.info("unloaded adapter %s", name)
            except AgentmemError as exc:  # a server that went away: nothing left to unload
                log.warning("could not unload adapter %s: %s", name, exc)

        threading.Thread(target=run, name=f"unload-{name}", daemon=True).start()

    def serving(self) -> dict[str, str]:
        return dict(self._serving)
