"""The Knowledge tab: upload files or a folder into the pool (live progress, per-file problems), list and
remove the pool's sources, and search its documents showing the retrieved chunks and their scores.

Uploads are copied into uploads/<pool>/ with safe names (ui.uploads) and ingested from there; after an ingest,
open misses the new documents answer are resolved. Ingestion itself is indexes.store's.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
import pandas as pd

from agentmem.errors import AgentmemError, NotFound
from ui.app_format import hits_html, sources_table
from ui.services import Services
from ui.uploads import pool_folder, save_local_files


def _summary(result: dict, pool: str) -> str:
    ok = "✅" if not result["failed"] else "⚠️"
    text = (f"{ok} Ingested **{result['files']}** file{'s' if result['files'] != 1 else ''} "
            f"(**{result['chunks_added']}** chunks) into pool **{pool}** in "
            + (f"{result['seconds']:.1f} s" if result["seconds"] >= 0.1 else "under 0.1 s"))
    extras = []
    if result["unchanged"]:
        extras.append(f"{result['unchanged']} unchanged")
    if result["chunks_removed"]:
        extras.append(f"{result['chunks_removed']} old chunks replaced")
    if result["resolved_misses"]:
        n = len(result["resolved_misses"])
        extras.append(f"answers {n} earlier unanswered question{'s' if n != 1 else ''}")
    return text + (" · " + " · ".join(extras) if extras else "")


def _issues(result: dict) -> pd.DataFrame:
    rows = [{"file": os.path.basename(i["path"]), "problem": f"{kind}: {i['reason']}"}
            for kind in ("failed", "skipped", "warnings") for i in result[kind]]
    return pd.DataFrame(rows, columns=["file", "problem"])


def _drop_gradio_copies(paths: list[str]) -> None:
    """Gradio keeps each upload in its cache; once copied into uploads/<pool>/ that copy is dead weight."""
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder()).resolve()
    for p in paths:
        path = Path(p).resolve()
        if path.is_relative_to(cache):
            path.unlink(missing_ok=True)


def build(services: Services, pool_dd: gr.Dropdown):
    settings = services.settings

    with gr.Tab("Knowledge", id="knowledge") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                gr.Markdown(
                    "### Add documents\nMarkdown, text, PDF, HTML, code, JSON/CSV, logs and chat exports. "
                    f"Up to {settings.max_upload_bytes / 2**20:.0f} MB per file."
                )
                files = gr.File(file_count="multiple", label="Files", elem_id="am-files", height=150)
                folder = gr.File(
                    file_count="directory", label="…or a whole folder", elem_id="am-folder", height=110
                )
                ingest_btn = gr.Button("Ingest into pool", variant="primary", elem_id="am-ingest")
                result_md = gr.Markdown(elem_id="am-ingest-result")
                issues_df = gr.Dataframe(
                    label="Files not ingested",
                    visible=False,
                    interactive=False,
                    wrap=True,
                    elem_id="am-ingest-issues",
                )
            with gr.Column(scale=3):
                gr.Markdown("### Search the pool")
                with gr.Row(equal_height=True):
                    query = gr.Textbox(placeholder="What are you looking for?", show_label=False, scale=6,
                                       elem_id="am-search")
                    search_btn = gr.Button("Search", scale=1, min_width=90, elem_id="am-search-btn")
                k = gr.Slider(1, 20, value=5, step=1, label="Chunks to show", elem_id="am-search-k")
                results = gr.HTML(elem_id="am-search-results")
        gr.Markdown("### Sources in this pool")
        sources_df = gr.Dataframe(interactive=False, wrap=True, elem_id="am-sources", max_height=320,
                                  column_widths=["22%", "8%", "8%", "14%", "48%"])
        with gr.Row():
            remove_dd = gr.Dropdown(label="Remove a source", choices=[], scale=4, elem_id="am-remove-source")
            remove_btn = gr.Button("Remove", variant="stop", scale=1, min_width=100, elem_id="am-remove-btn")
            refresh_btn = gr.Button("Refresh", scale=1, min_width=100)

    def sources(pool: str):
        rows = services.rt.knowledge.sources(services.pool(pool))
        choices = [(os.path.basename(s.path) + f"  ({s.path})", s.path) for s in rows]
        return sources_table(rows), gr.update(choices=choices, value=None)

    def ingest(file_paths, folder_paths, pool: str, progress=gr.Progress()):  # noqa: B008 - Gradio's way
        paths = [p for p in [*(file_paths or []), *(folder_paths or [])] if p and Path(p).is_file()]
        if not paths:
            raise gr.Error("Choose some files or a folder first.")
        try:
            pool = services.pool(pool)
            progress(0, desc="Saving uploads…")
            saved = save_local_files(settings, pool, paths)
            _drop_gradio_copies(paths)

            def tell(p) -> None:
                total = max(p.files_total, 1)
                name = os.path.basename(p.path) if p.path else "finishing"
                progress(p.files_done / total, desc=f"{p.files_done}/{p.files_total} files · {name} · "
                                                    f"{p.chunks_done} chunks")

            result = services.ingest(saved, pool, progress=tell)
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc
        issues = _issues(result)
        table, choices = sources(pool)
        return (_summary(result, pool), gr.update(value=issues, visible=not issues.empty), table, choices,
                None, None)

    ingest_btn.click(ingest, [files, folder, pool_dd],
                     [result_md, issues_df, sources_df, remove_dd, files, folder], api_name="ingest")

    def search(q: str, pool: str, k_: float) -> str:
        if not (q or "").strip():
            return "<p class='am-muted'>Type a query.</p>"
        try:
            return hits_html(services.rt.knowledge.search(q, services.pool(pool), k=int(k_)))
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc

    search_btn.click(search, [query, pool_dd, k], results, api_name="search")
    query.submit(search, [query, pool_dd, k], results, api_visibility="private")

    def remove(path: str | None, pool: str):
        if not path:
            raise gr.Error("Pick a source to remove.")
        pool = services.pool(pool)
        try:
            n = services.rt.knowledge.remove_source(path, pool)
        except NotFound as exc:
            raise gr.Error(str(exc)) from exc
        stored = Path(path)
        if stored.is_file() and stored.resolve().is_relative_to(pool_folder(settings, pool).resolve()):
            stored.unlink()  # our own upload copy: without it a later folder re-ingest cannot bring it back
        gr.Info(f"Removed {os.path.basename(path)} ({n} chunks)")
        return sources(pool)

    remove_btn.click(remove, [remove_dd, pool_dd], [sources_df, remove_dd], api_visibility="private")
    refresh_btn.click(sources, [pool_dd], [sources_df, remove_dd], api_visibility="private")
    for trigger in (pool_dd.change, tab.select):
        trigger(sources, [pool_dd], [sources_df, remove_dd], api_visibility="private")
    return sources, [sources_df, remove_dd]
