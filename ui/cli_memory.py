"""The memory log from the command line: `agentmem facts ...` and `agentmem misses list`.

Lists print a table for people or a JSON list with --json; changes go through `graphs.facts` so the memory
collection in Chroma follows the log.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ui.cli import app, get_settings

PoolOption = Annotated[Optional[str], typer.Option("--pool", "-p", help="Pool (default: settings.default_pool).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
out = Console(highlight=False, soft_wrap=True)

facts_app = typer.Typer(help="List, show, edit, reject or delete taught facts.", no_args_is_help=True)
misses_app = typer.Typer(help="Questions the agent could not answer.", no_args_is_help=True)
app.add_typer(facts_app, name="facts")
app.add_typer(misses_app, name="misses")


def _parts(pool: str | None):
    from agentmem.memory import open_memory_log

    settings = get_settings()
    return settings, open_memory_log(settings), pool or settings.default_pool


def _knowledge(settings):
    from indexes.store import open_store

    return open_store(settings)


def _dump(records) -> None:
    print(json.dumps([r.model_dump(mode="json") for r in records]))


@facts_app.command("list")
def facts_list(
    pool: PoolOption = None,
    status: Annotated[Optional[str], typer.Option(help="pending, consolidated, known, rejected or superseded.")] = None,
    search: Annotated[Optional[str], typer.Option(help="Only facts whose text contains this.")] = None,
    json_out: JsonOption = False,
) -> None:
    """List the pool's facts, oldest first."""
    _, memory, pool = _parts(pool)
    facts = memory.list_facts(pool, status=status, search=search)
    if json_out:
        return _dump(facts)
    table = Table("status", "fact", "adapter", "provenance", "id", title=f"facts in pool {pool}")
    for f in facts:
        table.add_row(f.status.value, f.text, f.adapter_version or "", f.provenance.kind.value, f.id)
    out.print(table)


@facts_app.command("show")
def facts_show(fact_id: str, pool: PoolOption = None) -> None:
    """Show one fact with its provenance, as JSON."""
    _, memory, pool = _parts(pool)
    print(json.dumps(memory.get_fact(pool, fact_id).model_dump(mode="json"), indent=2))


@facts_app.command("edit")
def facts_edit(fact_id: str, text: Annotated[str, typer.Argument(help="The new text.")], pool: PoolOption = None,
               json_out: JsonOption = False) -> None:
    """Change a fact's text (a trained fact goes back to pending)."""
    from graphs.facts import edit_fact

    settings, memory, pool = _parts(pool)
    fact = edit_fact(memory, _knowledge(settings), pool, fact_id, text)
    print(json.dumps(fact.model_dump(mode="json"))) if json_out else out.print(f"edited {fact.id}: {fact.text}")


@facts_app.command("reject")
def facts_reject(fact_id: str, pool: PoolOption = None) -> None:
    """Mark a fact wrong or unverifiable: never retrieved, never trained."""
    from graphs.facts import reject_fact

    settings, memory, pool = _parts(pool)
    fact = reject_fact(memory, _knowledge(settings), pool, fact_id)
    out.print(f"rejected {fact.id}: {fact.text}")


@facts_app.command("delete")
def facts_delete(fact_id: str, pool: PoolOption = None) -> None:
    """Delete a fact for good."""
    from graphs.facts import delete_fact

    settings, memory, pool = _parts(pool)
    fact = delete_fact(memory, _knowledge(settings), pool, fact_id)
    out.print(f"deleted {fact.id}: {fact.text}")


@misses_app.command("list")
def misses_list(
    pool: PoolOption = None,
    status: Annotated[Optional[str], typer.Option(help="open or resolved.")] = None,
    json_out: JsonOption = False,
) -> None:
    """List the questions the agent could not answer, and what resolved them."""
    _, memory, pool = _parts(pool)
    misses = memory.list_misses(pool, status=status)
    if json_out:
        return _dump(misses)
    table = Table("id", "status", "question", "best score", "resolved by", title=f"misses in pool {pool}")
    for m in misses:
        by = f"{m.resolved_by.kind.value} {m.resolved_by.ref}" if m.resolved_by else ""
        table.add_row(m.id, m.status.value, m.question, f"{m.best_score or 0:.2f}", by)
    out.print(table)
