"""The `agentmem` command line.

A thin layer: it parses flags, builds Settings once, calls into the library and prints (rich for people, JSON
with --json for scripts). Errors the user can act on (AgentmemError) print one line and exit non-zero; commands
for each noun live in their own `ui/cli_<noun>.py` module and register here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from agentmem.errors import AgentmemError
from agentmem.settings import Settings, load_settings

app = typer.Typer(
    name="agentmem",
    help="An agent that learns: ingest documents, chat, teach facts, and consolidate them into a LoRA adapter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(stderr=True)


class State:
    home: Path | None = None
    config: Path | None = None


@app.callback()
def _root(
    home: Annotated[Optional[Path], typer.Option("--home", help="Data folder (default: $AGENTMEM_HOME or the per-user data dir).")] = None,
) -> None:
    State.home = home


def get_settings(**overrides) -> Settings:
    """Settings for this invocation: --home and command flags over env, config file and defaults."""
    try:
        return load_settings(home=State.home, **overrides)
    except Exception as exc:  # pydantic ValidationError: one readable line per bad field
        errors = getattr(exc, "errors", None)
        if callable(errors):
            msg = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in errors())
            raise AgentmemError(f"invalid settings: {msg}", "check AGENTMEM_* variables and config.toml") from exc
        raise


def _register() -> None:
    # Each module adds its commands to `app` on import.
    from ui import (  # noqa: F401
        cli_agent,
        cli_consolidate,
        cli_core,
        cli_eval,
        cli_ingest,  # noqa: F401
        cli_memory,
        cli_ui,  # noqa: F401
        cli_vllm,
    )


def main() -> None:
    _register()
    try:
        app()
    except AgentmemError as exc:
        console.print(f"[red]error:[/red] {exc.message}" + (f" — {exc.hint}" if exc.hint else ""), highlight=False,
                      soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
