"""Recovery of consolidation runs whose process died: a run left `running` blocks its pool until it is marked
failed (facts still pending) or, when its adapter was already registered, succeeded with its bookkeeping finished.
"""

from __future__ import annotations

import logging
import os

from agentmem.memory import FactStatus, RunStatus
from agentmem.registry import AdapterRegistry

log = logging.getLogger(__name__)


def recover_stale_runs(memory, pool: str, registry: AdapterRegistry | None = None) -> str | None:
    """A run left running by a dead process blocks its pool: mark it failed (its facts are still pending), or,
    when it died after its adapter was registered, succeeded, and finish its bookkeeping (`reconcile_published`)."""
    run = memory.active_run(pool)
    finished = None
    if run is not None:
        pid = (run.config or {}).get("pid")
        if pid and pid != os.getpid() and not _alive(pid):
            published = next((v for v in registry.list(pool) if v.run_id == run.id), None) if registry else None
            if published is None:
                memory.update_run(pool, run.id, status=RunStatus.FAILED, error="interrupted: its process died")
            else:
                memory.update_run(pool, run.id, status=RunStatus.SUCCEEDED, adapter_version=published.version,
                                  error="its process died after publishing; the bookkeeping was finished later")
            finished = run.id
    if registry is not None:
        reconcile_published(memory, registry, pool)
    return finished


def reconcile_published(memory, registry: AdapterRegistry, pool: str) -> list[str]:
    """Facts a registered adapter was trained on but that are still pending (the process died between publishing
    and marking them) become consolidated into that adapter. Idempotent."""
    marked: list[str] = []
    pending = {f.id for f in memory.list_facts(pool, status=FactStatus.PENDING)}
    for version in registry.list(pool) if pending else []:
        ids = [i for i in version.manifest().fact_ids if i in pending]
        if ids:
            memory.mark_consolidated(pool, ids, version.version)
            pending -= set(ids)
            marked += ids
            log.info("pool %s: %d facts of adapter %s marked consolidated after a crash", pool, len(ids),
                     version.version)
    return marked


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_not_running(memory, pool: str, registry: AdapterRegistry | None = None) -> None:
    recover_stale_runs(memory, pool, registry)
    run = memory.active_run(pool)
    if run is not None:
        from agentmem.errors import Busy

        raise Busy(f"a consolidation run is already {run.status.value} for pool {pool} ({run.id})",
                   "wait for it, or cancel it: agentmem consolidate --cancel")
