"""The consolidation scheduler: a small thread in the app server that starts runs when they are due.

A pool is due when it has at least `consolidate_min_pending` pending facts, or when it has any pending fact
and its last run started `consolidate_every_minutes` ago or more (or the server started that long ago and it
has no run). Both settings at 0 (the default) turn it off. It only decides when; runs go through ui.jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from agentmem.errors import AgentmemError
from agentmem.memory import FactStatus
from agentmem.settings import Settings

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        memory_of: Callable[[], object],
        jobs,
        pools: Callable[[], list[str]],
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.s = settings
        self._memory_of = memory_of  # the memory log is opened lazily by the runtime
        self.jobs = jobs
        self.pools = pools
        self.clock = clock
        self.started_at = clock()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.s.consolidate_min_pending > 0 or self.s.consolidate_every_minutes > 0

    def describe(self) -> str:
        if not self.enabled:
            return "off — set consolidate_min_pending or consolidate_every_minutes to turn it on"
        rules = []
        if self.s.consolidate_min_pending > 0:
            rules.append(f"when a pool has {self.s.consolidate_min_pending}+ pending facts")
        if self.s.consolidate_every_minutes > 0:
            rules.append(f"every {self.s.consolidate_every_minutes:g} min if there is work")
        return "on: " + " or ".join(rules) + f" (checked every {self.s.scheduler_poll_s:g} s)"

    def due(self, pool: str) -> str | None:
        """Why `pool` should consolidate now, or None."""
        memory = self._memory_of()
        if memory.active_run(pool) is not None:
            self.jobs.recover(pool)  # a run left `running` by a dead process must not block the pool for good
            if memory.active_run(pool) is not None:
                return None
        pending = len(memory.list_facts(pool, status=FactStatus.PENDING))
        if pending == 0:
            return None
        if 0 < self.s.consolidate_min_pending <= pending:
            return f"{pending} pending facts"
        if self.s.consolidate_every_minutes > 0:
            runs = memory.list_runs(pool, limit=1)
            last = _epoch(runs[0].created_at) if runs else self.started_at
            if self.clock() - last >= self.s.consolidate_every_minutes * 60:
                return f"{self.s.consolidate_every_minutes:g} min since the last run"
        return None

    def tick(self) -> list[str]:
        """Start every due pool's run; returns the run ids started."""
        started = []
        for pool in self.pools():
            try:
                reason = self.due(pool)
                if reason:
                    job = self.jobs.start(pool, trigger=f"scheduler: {reason}")
                    started.append(job.run_id)
            except AgentmemError as exc:  # Busy from a run started meanwhile, an odd pool name: try next time
                self.last_error = str(exc)
                log.info("scheduler skipped pool %s: %s", pool, exc)
        return started

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="consolidation-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.s.scheduler_poll_s):
            try:
                self.tick()
            except Exception as exc:  # keep the thread alive: the next tick may succeed (e.g. a locked db)
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("scheduler tick failed")


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
