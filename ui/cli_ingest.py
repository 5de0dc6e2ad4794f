"""Knowledge commands: `agentmem ingest`, `agentmem search`, `agentmem sources list|remove`.

Parses flags, shows progress on stderr, prints results (a summary for people, JSON on stdout with --json). The
work happens in `indexes.store.KnowledgeBase`; this module only talks to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from agentmem.errors import AgentmemError
from ui.cli import app, console, get_settings

PoolOption = Annotated[str | None, typer.Option("--pool", "-p", help="Pool to use (default: settings.default_pool).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
out = Console(highlight=False, soft_wrap=True)  # results go to stdout; progress and errors to stderr

sources_app = typer.Typer(help="List or remove the files ingested into a pool.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


def _store():
    from indexes.store import open_store

    return open_store(get_settings())


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest (folders recursively).")],
    pool: PoolOption = None,
    prune: Annotated[bool, typer.Option("--prune", help="Also remove sources under PATHs whose files are gone.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Index documents, code, data, logs and chats into a pool. Re-running adds only what changed."""
    kb = _store()
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}[/bold]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files  {task.fields[chunks]} chunks  {task.fields[rate]:.1f} chunks/s"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("ingest", total=None, chunks=0, rate=0.0)

        def progress(p) -> None:
            rate = p.chunks_done / p.elapsed if p.elapsed > 0 else 0.0
            bar.update(task, description="ingest", total=p.files_total, completed=p.files_done,
                       chunks=p.chunks_done, rate=rate)

        bar.update(task, description="loading the embedding model")
        kb.embedder  # noqa: B018  (load it before files are counted, so chunks/s is about ingesting)
        report = kb.ingest([str(p) for p in paths], pool, prune=prune, progress=progress)
    resolved = _resolve_misses(kb, report.pool) if report.chunks_added else []
    if json_out:
        print(json.dumps(report.to_dict() | {"misses_resolved": resolved}))
    else:
        rate = report.chunks_added / report.seconds if report.seconds > 0 else 0.0
        out.print(f"pool {report.pool}: {report.files} file(s) ingested, {report.unchanged} unchanged, "
                  f"{len(report.skipped)} skipped, {len(report.failed)} failed; +{report.chunks_added} / "
                  f"-{report.chunks_removed} chunks in {report.seconds:.1f} s ({rate:.1f} chunks/s)")
        for label, issues in (("skipped", report.skipped), ("warning", report.warnings), ("failed", report.failed)):
            for issue in issues:
                out.print(f"  {label}: {issue.path}: {issue.reason}")
        for path in report.pruned:
            out.print(f"  pruned: {path}")
        if resolved:
            out.print(f"  {len(resolved)} earlier unanswered question(s) now answered by these documents")
    if report.failed:
        raise typer.Exit(1)


def _resolve_misses(kb, pool: str) -> list[str]:
    """Logged misses that the new documents answer become consolidation candidates."""
    from agentmem.memory import open_memory_log
    from graphs.misses import resolve_misses_with_documents

    with open_memory_log(kb.settings) as memory:
        return resolve_misses_with_documents(memory, kb, kb.settings, pool)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, max=100, help="How many chunks to return.")] = 5,
    pool: PoolOption = None,
    where: Annotated[str | None, typer.Option("--where", help='Chroma metadata filter as JSON, e.g. \'{"kind": "pdf"}\'.')] = None,
    json_out: JsonOption = False,
) -> None:
    """Show the chunks of a pool most similar to QUERY, with scores (0-1) and sources."""
    try:
        filt = json.loads(where) if where else None
    except json.JSONDecodeError as exc:
        raise AgentmemError(f"--where is not JSON: {exc}", 'e.g. --where \'{"kind": "pdf"}\'') from exc
    hits = _store().search(query, pool, k=k, where=filt)
    if json_out:
        print(json.dumps([h.to_dict() for h in hits]))
        return
    if not hits:
        out.print("no results (is anything ingested in this pool? see: agentmem sources list)")
    for i, h in enumerate(hits, 1):
        where_in = f":{h.line_start}-{h.line_end}" if h.line_start else f" p.{h.page}" if h.page else ""
        out.print(f"[bold]{i}. {h.score:.3f}[/bold] {h.source}{where_in}" + (f"  ({h.section})" if h.section else ""))
        snippet = " ".join(h.text.split())
        out.print(f"   {snippet[:300]}{'...' if len(snippet) > 300 else ''}")


@sources_app.command("list")
def sources_list(pool: PoolOption = None, json_out: JsonOption = False) -> None:
    """The files ingested into a pool, with kind, chunk count and when."""
    rows = _store().sources(pool)
    if json_out:
        print(json.dumps([r.to_dict() for r in rows]))
        return
    if not rows:
        out.print("no sources in this pool")
        return
    table = Table("path", "kind", "chunks", "ingested at")
    for r in rows:
        table.add_row(r.path, r.kind, str(r.chunks), r.ingested_at)
    out.print(table)


@sources_app.command("remove")
def sources_remove(
    path: Annotated[Path, typer.Argument(help="An ingested file, or a folder to remove every source under it.")],
    pool: PoolOption = None,
    json_out: JsonOption = False,
) -> None:
    """Remove a source's chunks from the pool (the file itself is not touched)."""
    removed = _store().remove_source(path, pool)
    if json_out:
        print(json.dumps({"path": str(path), "chunks_removed": removed}))
    else:
        out.print(f"removed {removed} chunk(s) of {path}")
