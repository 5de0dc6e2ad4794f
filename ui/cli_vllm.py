"""`agentmem vllm start|stop|status`: a local vLLM server for the base model, with runtime LoRA loading.

The server runs from its own venv (`./install.sh --vllm`) on the loopback port of AGENTMEM_VLLM_URL; set
AGENTMEM_LLM_BACKEND=vllm to answer with it. The work happens in agentmem.vllm_server; this module prints.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from ui.cli import app, console, get_settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
out = Console(highlight=False, soft_wrap=True)

vllm_app = typer.Typer(help="Run a local vLLM server (its own venv: ./install.sh --vllm).", no_args_is_help=True)
app.add_typer(vllm_app, name="vllm")


@vllm_app.command("start")
def start(json_out: JsonOption = False) -> None:
    """Start the server (detached), wait until healthy, and load every pool's active adapter."""
    from agentmem import vllm_server

    settings = get_settings()
    with console.status("starting vLLM...") as spinner:
        result = vllm_server.start(settings, progress=spinner.update)
    rec = result.record
    if json_out:
        print(json.dumps({"pid": rec.pid, "url": rec.url, "model": rec.model, "log": rec.log,
                          "seconds": round(result.seconds, 1), "already_running": result.already_running,
                          "adapters": result.adapters, "adapter_errors": result.adapter_errors}))
    else:
        state = "already running" if result.already_running else f"healthy after {result.seconds:.0f} s"
        out.print(f"vLLM serves {rec.model} at {rec.url} (pid {rec.pid}, {state}); log: {rec.log}")
        if result.adapters:
            out.print(f"adapters loaded: {', '.join(result.adapters)}")
        if settings.llm_backend != "vllm":
            out.print(f"answer with it: AGENTMEM_LLM_BACKEND=vllm AGENTMEM_VLLM_URL={rec.url}")
    for problem in result.adapter_errors:
        console.print(f"[yellow]warning:[/yellow] adapter not loaded for {problem}", highlight=False)


@vllm_app.command("stop")
def stop() -> None:
    """Stop the server started from this data folder (and its engine process)."""
    from agentmem import vllm_server

    record = vllm_server.stop(get_settings())
    out.print(f"stopped vLLM (pid {record.pid})" if record else "no vLLM server was running")


@vllm_app.command("status")
def status(json_out: JsonOption = False) -> None:
    """Whether the server runs and answers, with its model, adapters and log."""
    from agentmem import vllm_server

    settings = get_settings()
    info = vllm_server.status(settings)
    if json_out:
        print(json.dumps(info))
        return
    if info["running"]:
        health = "healthy" if info["healthy"] else "not answering yet"
        out.print(f"running: pid {info['pid']} at {info['url']} ({health}, up {info['uptime_s']} s)")
    elif info["healthy"]:
        out.print(f"not started here, but a server answers at {info['url']}")
    else:
        out.print(f"not running ({info['url']})")
    if info.get("leftover_pids"):
        pids = ", ".join(map(str, info["leftover_pids"]))
        out.print(f"its main process died, leaving processes {pids} running; "
                  "`agentmem vllm stop` (or the next start) ends them")
    if info.get("served_model"):
        out.print(f"model: {info['served_model']}")
    if info["adapters"]:
        out.print(f"adapters: {', '.join(info['adapters'])}")
    out.print(f"log: {info['log']}")
    if not info["venv_ready"]:
        out.print(f"venv: missing at {info['venv']} (create it: ./install.sh --vllm-only)")
