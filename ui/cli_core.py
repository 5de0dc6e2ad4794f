"""Core commands: `agentmem init`, `ask`, `chat`, `status`.

`ask` and `chat` talk to the base model through the configured backend; once the agent exists they go through it.
This module prints and parses only; the work happens in the library.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Optional

import typer

from agentmem.llm.base import GenerationConfig
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
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    adapter: Annotated[Optional[str], typer.Option(help="Serving name of a loaded adapter (default: base).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Token budget for the answer.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print {answer, adapter, tokens, seconds} as JSON.")] = False,
) -> None:
    """Answer one question and exit."""
    from agentmem.llm import open_backend

    settings = get_settings()
    with console.status("Loading the model..."):
        backend = open_backend(settings)
    config = GenerationConfig(max_new_tokens=max_tokens or settings.max_new_tokens)
    messages = [{"role": "user", "content": question}]
    if json_out:
        g = backend.generate(messages, config, adapter=adapter)
        print(json.dumps({"answer": g.text.strip(), "adapter": g.adapter, "tokens": g.completion_tokens,
                          "seconds": round(g.seconds, 3)}))
        return
    for piece in backend.stream(messages, config, adapter=adapter):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@app.command()
def chat(
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Token budget per answer.")] = None,
) -> None:
    """Chat in the terminal with streamed answers (Ctrl-D or /exit to leave, /reset to forget the conversation)."""
    from agentmem.llm import open_backend

    settings = get_settings()
    with console.status("Loading the model..."):
        backend = open_backend(settings)
    config = GenerationConfig(max_new_tokens=max_tokens or settings.max_new_tokens)
    history: list[dict] = []
    console.print("agentmem chat — /exit to leave, /reset to start over", highlight=False)
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            continue
        if line in ("/exit", "/quit"):
            break
        if line == "/reset":
            history.clear()
            continue
        history.append({"role": "user", "content": line})
        sys.stdout.write("agent> ")
        parts = []
        for piece in backend.stream(history, config):
            parts.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        history.append({"role": "assistant", "content": "".join(parts).strip()})


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
        "backend": settings.llm_backend if settings.llm_backend == "transformers" else f"vllm at {settings.vllm_url}",
        "chroma": settings.chroma_url or f"embedded at {settings.chroma_dir}",
        "hardware": hw,
    }
    if json_out:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            console.print(f"[bold]{k}[/bold]: {v}", highlight=False)
