"""Consolidation runs started from the app or the API, each in a background thread of the server process.

One run per pool: the memory log refuses a second (Busy). The recipe's progress events are kept here in memory
(stage, loss curve, tokens/s, ETA) for the app and the API to poll; the run's record of truth stays in the
memory log. Cancelling sets the run's event, and also drops the `cancel` file the recipe watches, so runs
started by the CLI in another process stop too. When to run is decided elsewhere (ui.scheduler); what a run
does lives in agentmem.consolidate.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentmem.consolidate import RunOutcome, check_not_running, recover_stale_runs
from agentmem.memory import RunStatus
from graphs.misses import document_answerer
from indexes.client import validate_pool

log = logging.getLogger(__name__)
MAX_LOSS_POINTS = 2000  # a long run's curve is thinned beyond this, so polling stays cheap

# (pool, run_id, progress callback, cancel event) -> outcome. Tests pass a fake; the default runs the recipe.
Runner = Callable[[str, str, Callable[[dict], None], threading.Event], RunOutcome]


@dataclass
class JobProgress:
    run_id: str
    pool: str
    trigger: str = "app"
    status: str = "running"
    stage: str = "queued"
    step: int = 0
    total: int = 0
    epoch: float | None = None
    loss: list[tuple[int, float]] = field(default_factory=list)
    tokens_per_s: float | None = None
    eta_s: float | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.finished is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "pool": self.pool, "trigger": self.trigger, "status": self.status,
            "stage": self.stage, "step": self.step, "total": self.total, "epoch": self.epoch,
            "loss": [{"step": s, "loss": v} for s, v in self.loss], "tokens_per_s": self.tokens_per_s,
            "eta_s": self.eta_s, "elapsed_s": round((self.finished or time.time()) - self.started, 1),
            "outcome": self.outcome, "error": self.error, "active": self.active,
        }


def outcome_summary(outcome: RunOutcome) -> dict[str, Any]:
    """What the app shows of a finished run: the gate decision and the headline metrics, not every example."""
    ev = {k: v for k, v in (outcome.metrics.get("eval") or {}).items() if k != "examples"}
    return {
        "status": outcome.status, "promoted": bool(outcome.gate.get("promoted")),
        "reason": outcome.gate.get("reason"), "checks": outcome.gate.get("checks", []),
        "adapter_version": outcome.adapter_version, "serving_name": outcome.serving_name,
        "facts": outcome.metrics.get("facts"), "eval": ev, "error": outcome.error,
    }


class ConsolidationJobs:
    def __init__(self, runtime, runner: Runner | None = None):
        self.rt = runtime
        self._runner = runner or self._consolidate
        self._jobs: dict[str, JobProgress] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- starting and stopping -------------------------------------------------------------------------------
    def start(self, pool: str, *, trigger: str = "app") -> JobProgress:
        """Claim a run for `pool` and work on it in a thread; raises Busy while the pool has an active run."""
        validate_pool(pool)
        memory = self.rt.memory
        with self._lock:
            check_not_running(memory, pool, self.rt.registry)
            run = memory.claim_run(pool, config={"queued_by": trigger, "pid": os.getpid()})
            job = JobProgress(run.id, pool, trigger=trigger)
            cancel = threading.Event()
            thread = threading.Thread(target=self._work, args=(job, cancel), name=f"consolidate-{pool}",
                                      daemon=True)
            self._jobs[run.id], self._cancels[run.id], self._threads[run.id] = job, cancel, thread
        thread.start()
        log.info("consolidation run %s started for pool %s (%s)", run.id, pool, trigger)
        return job

    def recover(self, pool: str) -> str | None:
        """Finish the record of a run whose process died (this server before a crash, or a CLI run killed):
        it would otherwise stay `running` and block the pool. Returns the id of the run it finished."""
        return recover_stale_runs(self.rt.memory, pool, self.rt.registry)

    def cancel(self, pool: str) -> str | None:
        """Ask the pool's active run to stop at its next step; returns its id (None: nothing was running)."""
        run = self.rt.memory.active_run(validate_pool(pool))
        if run is None:
            return None
        event = self._cancels.get(run.id)
        if event is not None:
            event.set()
        folder = self.rt.settings.runs_dir / run.id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cancel").touch()  # the recipe also watches this file: reaches a run in another process
        return run.id

    def wait(self, run_id: str, timeout: float | None = None) -> JobProgress | None:
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)
        return self._jobs.get(run_id)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel runs still going (server shutdown); their facts stay pending and nothing is published."""
        for event in self._cancels.values():
            event.set()
        for thread in list(self._threads.values()):
            thread.join(timeout)

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, run_id: str) -> JobProgress | None:
        return self._jobs.get(run_id)

    def latest(self, pool: str) -> JobProgress | None:
        """The pool's most recent run started by this process."""
        jobs = [j for j in list(self._jobs.values()) if j.pool == pool]
        return max(jobs, key=lambda j: j.started) if jobs else None

    def snapshot(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(run_id)
            return job.to_dict() if job else None

    # -- the work --------------------------------------------------------------------------------------------
    def _on_progress(self, job: JobProgress, event: dict[str, Any]) -> None:
        with self._lock:
            stage = event.get("stage")
            if stage and stage != "done":
                job.stage = stage
            if "step" in event:
                job.step, job.total = int(event["step"]), int(event.get("total") or job.total)
                job.epoch = event.get("epoch")
                if event.get("loss") is not None:
                    job.loss.append((job.step, float(event["loss"])))
                    if len(job.loss) > MAX_LOSS_POINTS:
                        job.loss = job.loss[::2]
                job.tokens_per_s, job.eta_s = event.get("tokens_per_s"), event.get("eta_s")
            if stage == "done":
                job.status = str(event.get("status", job.status))

    def _work(self, job: JobProgress, cancel: threading.Event) -> None:
        try:
            outcome = self._runner(job.pool, job.run_id, lambda e: self._on_progress(job, e), cancel)
            with self._lock:
                job.status, job.error, job.outcome = outcome.status, outcome.error, outcome_summary(outcome)
        except Exception as exc:  # a run that dies before the recipe records it must not block the pool
            log.exception("consolidation run %s failed", job.run_id)
            with self._lock:
                job.status, job.error = RunStatus.FAILED.value, f"{type(exc).__name__}: {exc}"
            self._mark_failed(job)
        finally:
            with self._lock:
                job.finished = time.time()  # `stage` keeps the last stage reached
                job.eta_s = 0.0 if job.status == "succeeded" else job.eta_s

    def _mark_failed(self, job: JobProgress) -> None:
        try:
            run = self.rt.memory.get_run(job.pool, job.run_id)
            if run.active:
                self.rt.memory.update_run(job.pool, job.run_id, status=RunStatus.FAILED, error=job.error)
        except Exception:  # the log itself is failing: nothing more to record
            log.exception("could not mark run %s failed", job.run_id)

    def _consolidate(self, pool: str, run_id: str, progress, cancel: threading.Event) -> RunOutcome:
        from agentmem.bootstrap import base_model_path
        from agentmem.consolidate import Consolidation

        rt = self.rt
        job = Consolidation(
            rt.settings,
            rt.memory,
            rt.registry,
            rt.backend,
            base_model_dir=base_model_path(rt.settings),
            on_publish=rt.serving.refresh,
            progress=progress,
            cancel=cancel,
            document_answer=document_answerer(rt.agent.deps),
        )
        return job.execute(pool, run_id)
