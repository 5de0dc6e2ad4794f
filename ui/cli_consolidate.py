"""Consolidation and adapters from the command line: `agentmem consolidate`, `agentmem adapters ...`.

`consolidate --wait` runs in this process with a live progress line; without --wait the run is queued and a
detached `agentmem consolidate --run-id ID --wait` does the work (its output goes to the run's log). `adapters`
lists, shows, activates and rolls back versions; a running app or vLLM server picks the change up on its next
request (the registry is read per request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ui.cli import app, console, get_settings

PoolOption = Annotated[Optional[str], typer.Option("--pool", "-p", help="Pool (default: settings.default_pool).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
out = Console(highlight=False, soft_wrap=True)
adapters_app = typer.Typer(help="Adapter versions of a pool: list, show, activate, rollback.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")


@app.command()
def consolidate(
    pool: PoolOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Run here and wait for the result.")] = False,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Take over a queued run (used internally).")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the pool's active run.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Show the pool's latest run.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Train the pool's pending facts into a new LoRA adapter, evaluate it, and promote it if it passes the gate."""
    from agentmem.consolidate import check_not_running
    from agentmem.memory import open_memory_log

    settings = get_settings()
    pool = pool or settings.default_pool
    memory = open_memory_log(settings)
    if cancel or status:
        return _cancel_or_status(settings, memory, pool, cancel, json_out)
    from agentmem.registry import open_registry

    registry = open_registry(settings)  # opening it also removes what a crashed publish left behind
    if not wait:
        check_not_running(memory, pool, registry)
        run = memory.claim_run(pool, config={"queued_by": "cli"})
        settings.runs_dir.joinpath(run.id).mkdir(parents=True, exist_ok=True)
        logfile = open(settings.runs_dir / run.id / "worker.log", "ab")
        cmd = [sys.executable, "-c", "from ui.cli import main; main()", "--home", str(settings.home),
               "consolidate", "--pool", pool, "--run-id", run.id, "--wait", "--json"]
        subprocess.Popen(cmd, stdout=logfile, stderr=logfile, stdin=subprocess.DEVNULL, start_new_session=True,
                         env=os.environ.copy())
        result = {"run_id": run.id, "pool": pool, "status": "queued"}
        print(json.dumps(result)) if json_out else out.print(
            f"run {run.id} queued for pool {pool}; follow it with: agentmem consolidate --status --pool {pool}")
        return
    if run_id is None:
        check_not_running(memory, pool, registry)
    outcome = _run(settings, memory, pool, run_id, quiet=json_out)
    if json_out:
        print(json.dumps(_summary(outcome)))
    else:
        _print_outcome(outcome)
    if outcome.status in ("failed", "cancelled"):
        raise typer.Exit(1)


def _run(settings, memory, pool, run_id, *, quiet: bool):
    from agentmem.bootstrap import base_model_path
    from agentmem.consolidate import Consolidation
    from graphs.misses import document_answerer
    from graphs.runtime import AgentRuntime

    rt = AgentRuntime(settings)
    rt.__dict__["memory"] = memory

    def progress(event: dict) -> None:
        if quiet:
            return
        if event.get("stage") == "train" and "step" in event:
            console.print(f"  train step {event['step']}/{event['total']} loss {event['loss']:.3f} "
                          f"{event['tokens_per_s']:.0f} tok/s eta {event['eta_s']:.0f}s", highlight=False)
        elif "stage" in event:
            console.print(f"[bold]{event['stage']}[/bold] " + " ".join(
                f"{k}={v}" for k, v in event.items() if k not in ("stage", "run_id", "pool")), highlight=False)

    job = Consolidation(settings, memory, rt.registry, rt.backend, base_model_dir=base_model_path(settings),
                        on_publish=rt.serving.refresh, progress=progress,
                        document_answer=document_answerer(rt.agent.deps))
    try:
        return job.execute(pool, run_id)
    except KeyboardInterrupt:
        job.cancel.set()
        raise


def _summary(outcome) -> dict:
    ev = outcome.metrics.get("eval", {})
    return {
        "run_id": outcome.run_id, "pool": outcome.pool, "status": outcome.status,
        "promoted": bool(outcome.gate.get("promoted")), "gate": outcome.gate,
        "checks": {c["name"]: c["passed"] for c in outcome.gate.get("checks", [])},
        "metrics": {k: v for k, v in ev.items() if k != "examples"} | {"facts": outcome.metrics.get("facts"),
                                                                      "training": outcome.metrics.get("training")},
        "adapter_version": outcome.adapter_version, "serving_name": outcome.serving_name, "error": outcome.error,
    }


def _print_outcome(outcome) -> None:
    out.print(f"run {outcome.run_id}: {outcome.status}" + (f" — {outcome.error}" if outcome.error else ""))
    for c in outcome.gate.get("checks", []):
        out.print(f"  {'PASS' if c['passed'] else 'FAIL'} {c['name']}: {c['value']} (needs {c['bound']}) {c['detail']}")
    if outcome.gate and not outcome.gate.get("checks"):
        out.print(f"  {outcome.gate.get('reason')}")
    if outcome.adapter_version:
        out.print(f"  promoted: adapter {outcome.adapter_version} ({outcome.serving_name}) is now active")
    elif outcome.status == "rejected":
        out.print("  not promoted: the previous adapter keeps serving")


def _cancel_or_status(settings, memory, pool, cancel: bool, json_out: bool) -> None:
    from agentmem.consolidate import recover_stale_runs
    from agentmem.registry import open_registry

    recover_stale_runs(memory, pool, open_registry(settings))
    if cancel:
        run = memory.active_run(pool)
        if run is None:
            out.print(f"no active run in pool {pool}")
            return
        (settings.runs_dir / run.id).mkdir(parents=True, exist_ok=True)
        (settings.runs_dir / run.id / "cancel").touch()
        out.print(f"asked run {run.id} to stop (it stops at its next step)")
        return
    runs = memory.list_runs(pool, limit=1)
    if not runs:
        out.print(f"no runs in pool {pool}")
        return
    run = runs[0]
    data = run.model_dump(mode="json")
    if json_out:
        print(json.dumps(data))
    else:
        out.print(f"run {run.id}: {run.status.value}, stage {run.stage}, adapter {run.adapter_version}")
        if run.gate:
            out.print(f"  gate: {run.gate.get('reason')}")


@adapters_app.command("list")
def adapters_list(pool: PoolOption = None, json_out: JsonOption = False) -> None:
    """Versions of the pool's adapter, oldest first; * marks the active one."""
    from agentmem.registry import open_registry

    settings = get_settings()
    pool = pool or settings.default_pool
    reg = open_registry(settings)
    versions, active = reg.list(pool), reg.active(pool)
    if json_out:
        print(json.dumps([v.model_dump(mode="json") | {"active": active is not None and v.version == active.version}
                          for v in versions]))
        return
    table = Table("", "version", "serving name", "facts", "recall", "heldout", "retention", "created",
                  title=f"adapters of pool {pool}")
    for v in versions:
        m = v.manifest().metrics
        table.add_row("*" if active and v.version == active.version else "", v.version, v.serving_name,
                      str(v.fact_count), str(m.get("recall")), str(m.get("heldout_recall")), str(m.get("retention")),
                      v.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)
    if active is None:
        out.print("active: the base model")


@adapters_app.command("show")
def adapters_show(version: str, pool: PoolOption = None) -> None:
    """The version's manifest: base model, facts, data card, training config, metrics."""
    from agentmem.registry import open_registry

    settings = get_settings()
    print(open_registry(settings).get(pool or settings.default_pool, version).manifest().model_dump_json(indent=2))


@adapters_app.command("activate")
def adapters_activate(version: str, pool: PoolOption = None, json_out: JsonOption = False) -> None:
    """Serve this version for the pool."""
    from agentmem.registry import open_registry

    settings = get_settings()
    v = open_registry(settings).activate(pool or settings.default_pool, version)
    print(json.dumps(v.model_dump(mode="json"))) if json_out else out.print(f"active: {v.version} ({v.serving_name})")


@adapters_app.command("rollback")
def adapters_rollback(pool: PoolOption = None, json_out: JsonOption = False) -> None:
    """Make the previously active version active again (the base model before the first one)."""
    from agentmem.registry import open_registry

    settings = get_settings()
    v = open_registry(settings).rollback(pool or settings.default_pool)
    if json_out:
        print(json.dumps({"active": v.model_dump(mode="json") if v else None}))
    else:
        out.print(f"active: {v.version} ({v.serving_name})" if v else "active: the base model")
