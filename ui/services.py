"""What the app's tabs and the HTTP API share in one server process: the runtime, consolidation jobs, the
scheduler and the thread index, plus the few operations both sides offer (teach, ingest, adapters, status).

One `Services` per server. The runtime's parts are loaded once, at startup in a background thread (`warm`), so
the first chat does not pay for loading the model. Screens and routes live in ui.app_* and ui.api*; this
module holds no presentation.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from agentmem.errors import AgentmemError
from agentmem.memory import FactStatus, MissStatus
from agentmem.settings import Settings
from graphs.misses import resolve_misses_with_documents
from graphs.runtime import AgentRuntime
from indexes.client import validate_pool
from ui.jobs import ConsolidationJobs, Runner
from ui.scheduler import Scheduler
from ui.threads import ThreadIndex

log = logging.getLogger(__name__)


class Services:
    def __init__(
        self, settings: Settings, runtime: AgentRuntime | None = None, *, runner: Runner | None = None
    ):
        self.settings = settings
        self.rt = runtime or AgentRuntime(settings)
        self.jobs = ConsolidationJobs(self.rt, runner=runner)
        self.threads = ThreadIndex(settings.home / "app" / "threads.json")
        self.scheduler = Scheduler(settings, lambda: self.rt.memory, self.jobs, self.pools)
        self._warm_lock = threading.Lock()
        self.ready = threading.Event()
        self.warm_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def warm(self) -> None:
        """Load every part (the model included) once; callers in other threads wait here instead of racing."""
        with self._warm_lock:
            if self.ready.is_set():
                return
            try:
                self.rt.memory, self.rt.registry, self.rt.knowledge  # noqa: B018
                self.rt.agent  # noqa: B018 - builds the backend (loads the model) and the checkpointer
                self._recover_runs()
            except AgentmemError as exc:
                self.warm_error = str(exc)
                raise
            self.ready.set()

    def _recover_runs(self) -> None:
        """Runs this server (or a CLI) was doing when its process died show as failed from the start, not as
        running until someone asks to consolidate again; adapters published just before the crash keep theirs."""
        for pool in self.pools():
            run_id = self.jobs.recover(pool)
            if run_id:
                log.warning("pool %s: run %s was interrupted by the death of its process; recorded", pool, run_id)

    def start(self) -> None:
        threading.Thread(target=self._warm_quietly, name="agentmem-warm", daemon=True).start()
        self.scheduler.start()

    def _warm_quietly(self) -> None:
        try:
            self.warm()
            log.info("agentmem runtime ready")
        except Exception:
            log.exception("loading the runtime failed; requests will retry and show the error")

    def close(self) -> None:
        self.scheduler.stop()
        self.jobs.close()
        self.rt.close()

    @property
    def agent(self):
        self.warm()
        return self.rt.agent

    # -- shared operations -----------------------------------------------------------------------------------
    def pool(self, pool: str | None) -> str:
        return validate_pool((pool or "").strip() or self.settings.default_pool)

    def pools(self) -> list[str]:
        names = {self.settings.default_pool}
        names.update(self.rt.memory.list_pools())
        pools_of = getattr(self.rt.knowledge, "pools", None)
        if pools_of is not None:
            names.update(pools_of())
        if self.settings.adapters_dir.is_dir():
            names.update(
                p.name for p in self.settings.adapters_dir.iterdir() if p.is_dir() and p.name[0] != "."
            )
        return sorted(names)

    def teach(self, text: str, pool: str | None = None):
        """Store a fact through the agent (so contradictions supersede and misses resolve as in chat)."""
        text = " ".join(text.split())
        if not text:
            raise AgentmemError("nothing to teach", "write the fact as one sentence")
        return self.agent.ask(f"Remember that {text}", pool=self.pool(pool))

    def ingest(
        self, paths: list[str | os.PathLike[str]], pool: str | None = None, progress=None
    ) -> dict[str, Any]:
        pool = self.pool(pool)
        report = self.rt.knowledge.ingest(paths, pool, progress=progress)
        out = report.to_dict()
        out["resolved_misses"] = resolve_misses_with_documents(
            self.rt.memory, self.rt.knowledge, self.settings, pool
        )
        return out

    def adapters(self, pool: str | None = None) -> list[dict[str, Any]]:
        pool = self.pool(pool)
        registry = self.rt.registry
        active = registry.active(pool)
        rows = []
        for v in registry.list(pool):
            try:
                metrics = v.manifest().metrics
            except Exception:  # noqa: BLE001 - a damaged manifest must not hide the other versions
                metrics = {}
            rows.append(v.model_dump(mode="json") | {
                "active": active is not None and v.version == active.version,
                "metrics": {k: v for k, v in metrics.items() if k != "gate"},
                "gate": metrics.get("gate"),
            })
        return rows

    def activate(self, pool: str | None, version: str) -> dict[str, Any]:
        pool = self.pool(pool)
        v = self.rt.registry.activate(pool, version)
        self._refresh(pool)
        return {"pool": pool, "active": v.model_dump(mode="json")}

    def rollback(self, pool: str | None) -> dict[str, Any]:
        pool = self.pool(pool)
        v = self.rt.registry.rollback(pool)
        self._refresh(pool)
        return {"pool": pool, "active": v.model_dump(mode="json") if v else None}

    def _refresh(self, pool: str) -> None:
        # Before the model is loaded there is nothing to switch: the first request reads the registry anyway.
        if self.ready.is_set():
            self.rt.serving.refresh(pool)

    def run_status(self, run_id: str, pool: str | None = None) -> dict[str, Any]:
        """The memory log's record of a run, with live progress when this server is running it."""
        live = self.jobs.snapshot(run_id)
        pool = live["pool"] if live else self.pool(pool)
        run = self.rt.memory.get_run(pool, run_id).model_dump(mode="json")
        run["metrics"] = {k: v for k, v in (run.get("metrics") or {}).items() if k != "decisions"}
        if isinstance(run["metrics"].get("eval"), dict):
            run["metrics"]["eval"] = {k: v for k, v in run["metrics"]["eval"].items() if k != "examples"}
        run["progress"] = live
        return run

    # -- status ----------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        s = self.settings
        from agentmem.bootstrap import converted_model_dir

        backend = ("in-process transformers + PEFT" if s.llm_backend == "transformers"
                   else f"vLLM server at {s.vllm_url}")
        info: dict[str, Any] = {
            "base_model": str(s.base_model or converted_model_dir(s)),
            "embed_model": str(s.embed_model) if s.embed_model else "all-MiniLM-L6-v2 (from its PyPI wheel)",
            "backend": backend,
            "chroma": f"server at {s.chroma_url}" if s.chroma_url else f"embedded at {s.chroma_dir}",
            "data_folder": str(s.home),
            "device": device_description(),
            "scheduler": self.scheduler.describe(),
            "api_key": "required" if s.api_key else "not set (open on loopback only)",
            "loaded": self.ready.is_set(),
            "load_error": self.warm_error,
        }
        if self.ready.is_set():
            info["backend_info"] = self.rt.backend.info()
        info["pools"] = [self.pool_summary(p) for p in self.pools()]
        return info

    def pool_summary(self, pool: str) -> dict[str, Any]:
        memory, kb = self.rt.memory, self.rt.knowledge
        facts = memory.list_facts(pool)
        active = self.rt.registry.active(pool)
        row: dict[str, Any] = {
            "pool": pool,
            "facts": len(facts),
            "pending": sum(f.status is FactStatus.PENDING for f in facts),
            "open_misses": len(memory.list_misses(pool, status=MissStatus.OPEN)),
            "adapter": f"{active.version} ({active.serving_name})" if active else "base model",
        }
        if hasattr(kb, "sources"):
            row["sources"] = len(kb.sources(pool))
        if hasattr(kb, "count"):
            row["chunks"] = kb.count(pool)
        return row


def device_description() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)"
        return f"CPU ({torch.get_num_threads()} torch threads)"
    except Exception:  # noqa: BLE001 - torch missing or broken: the status page must still render
        return "unknown"
