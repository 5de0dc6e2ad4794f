"""Core commands: `agentmem init` and `agentmem status`.

This module prints and parses only; the work happens in the library.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from ui.cli import app, console, get_settings


@app.command()
def init(
    json_out: Annotated[bool, typer.Option("--json", help="Print paths as JSON.")] = False,
) -> None:
    """Prepare the data folder and models (idempotent; also runs lazily on first use)."""
    from agentmem.bootstrap import base_model_path, embed_model_path

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with console.status("Preparing the base model (converted once from GGUF, ~20 s)..."):
        base = base_model_path(settings)
    embed = embed_model_path(settings)
    info = {"home": str(settings.home), "base_model": str(base), "embed_model": str(embed),
            "seconds": round(time.perf_counter() - start, 2)}
    if json_out:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            console.print(f"[bold]{k}[/bold]: {v}", highlight=False)


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show settings, models and hardware without loading any model."""
    from agentmem.bootstrap import converted_model_dir

    settings = get_settings()
    try:
        import torch

        hw = f"CUDA ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"
    except Exception:  # torch missing would already have failed elsewhere; keep status usable
        hw = "unknown"
    info = {
        "home": str(settings.home),
        "base_model": str(settings.base_model or converted_model_dir(settings)),
        "backend": settings.llm_backend if settings.llm_backend == "transformers" else _vllm_backend(settings),
        "chroma": settings.chroma_url or f"embedded at {settings.chroma_dir}",
        "hardware": hw,
    }
    if json_out:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            console.print(f"[bold]{k}[/bold]: {v}", highlight=False)


@app.command()
def check(
    repair: Annotated[bool, typer.Option("--repair", help="Close dead runs and rebuild memory collections.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the data folder is whole (after a crash, say): databases, adapter registry, indexes, memories, runs."""
    from graphs.integrity import check_data_folder

    report = check_data_folder(get_settings(), repair=repair)
    if json_out:
        print(json.dumps(report))
    else:
        for pool, info in report["pools"].items():
            idx = info["index"]
            loose = f" ({idx['unrecorded_chunks']} unrecorded: re-run the ingest)" if idx["unrecorded_chunks"] else ""
            console.print(f"[bold]{pool}[/bold]: {idx['sources']} sources, {idx['chunks']} chunks{loose}, "
                          f"{info['facts']['active']} active facts, adapter {info['adapters']['active'] or 'none'}",
                          highlight=False)
        for line in report["repaired"]:
            console.print(f"[green]repaired[/green] {line}", highlight=False)
        for line in report["problems"]:
            console.print(f"[red]problem[/red] {line}", highlight=False)
        console.print("[green]ok[/green]" if report["ok"] else "[red]not ok[/red]")
    if not report["ok"]:
        raise typer.Exit(1)


def _vllm_backend(settings) -> str:
    from agentmem.vllm_server import healthy

    state = "healthy" if healthy(settings.vllm_url) else "not answering; start it: agentmem vllm start"
    return f"vllm at {settings.vllm_url} ({state})"
