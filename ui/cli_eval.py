"""`agentmem eval rag`: RAG vs closed-book accuracy of the agent on a QA dataset (see graphs/rag_eval.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ui.cli import app, console, get_settings

eval_app = typer.Typer(help="Measure the agent on published datasets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
DEFAULT_EVAL_DIR = Path("../shared/eval")


@eval_app.command("rag")
def eval_rag(
    dataset: Annotated[str, typer.Option(help="wiki-film, or a JSONL file of {question, answers, passage}.")] = "wiki-film",
    eval_dir: Annotated[Path, typer.Option(help="Folder holding the published sets.")] = DEFAULT_EVAL_DIR,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N questions, spread evenly (default: all).")] = None,
    pool: Annotated[Optional[str], typer.Option(help="Pool to ingest the passages into (default: eval-<dataset>).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Answer token budget.")] = 48,
    report: Annotated[Optional[Path], typer.Option(help="Write the JSON report here (default: under the data folder).")] = None,
    closed_book: Annotated[bool, typer.Option(help="Also score the same model without retrieval.")] = True,
    batch: Annotated[int, typer.Option(help="Questions asked at once, answered as one batch (1: one by one, "
                                            "streamed as in chat).")] = 16,
) -> None:
    """Ingest the dataset's passages into a pool, ask every question through the agent, score EM and F1."""
    import re
    import time

    from graphs.rag_eval import load_dataset, run_eval, write_passages
    from graphs.runtime import AgentRuntime

    settings = get_settings(max_new_tokens=max_tokens)
    items = load_dataset(dataset, eval_dir)
    if limit and limit < len(items):
        step = len(items) / limit
        items = [items[int(i * step)] for i in range(limit)]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(dataset).stem if dataset.endswith(".jsonl") else dataset)
    pool = pool or f"eval-{name}"[:63]
    backend = None
    if batch > 1:
        from agentmem.llm import open_backend
        from agentmem.llm.batching import MicroBatchingBackend

        backend = MicroBatchingBackend(open_backend(settings), max_batch=batch)
    rt = AgentRuntime(settings, backend=backend)
    folder = settings.home / "eval" / name / "passages"
    n_passages = write_passages(load_dataset(dataset, eval_dir), folder)
    with console.status(f"ingesting {n_passages} passages into pool {pool}..."):
        ingest = rt.knowledge.ingest([str(folder)], pool)
    console.print(f"pool {pool}: {ingest.files} files ingested, {ingest.unchanged} unchanged, "
                  f"+{ingest.chunks_added} chunks", highlight=False)
    rt.agent  # noqa: B018 - load the model before the clock starts

    def ask(question: str, retrieval: bool) -> str:
        return rt.agent.ask(question, pool=pool, retrieval=retrieval).answer

    modes = ("rag", "closed_book") if closed_book else ("rag",)
    with Progress(TextColumn("[bold]eval[/bold]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("eval", total=len(items) * len(modes))
        result = run_eval(ask, items, dataset=dataset, modes=modes, workers=batch,
                          progress=lambda done, total: bar.update(task, completed=done))
    path = report or settings.home / "eval" / name / f"report-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = result.to_dict() | {"model": str(rt.backend.info().get("model")), "pool": pool, "max_tokens": max_tokens,
                               "batch": batch}
    path.write_text(json.dumps(data, indent=2))
    out = Console(highlight=False)
    out.print(f"| {dataset} (n={result.n}) | EM | F1 | s/question |\n|---|---|---|---|")
    for mode, m in result.modes.items():
        out.print(f"| {mode} | {m['em']:.1f} | {m['f1']:.1f} | {m['seconds_per_question']:.2f} |")
    out.print(f"report: {path}")
