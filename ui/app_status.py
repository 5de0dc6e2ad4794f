"""The Status tab: base model, serving backend (in-process or vLLM URL), Chroma mode, data folder, device (GPU
or CPU), the scheduler, and every pool with its sources, facts, misses and active adapter.

It reads `Services.status()` (the same data as GET /api/status) and only lays it out.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ui.app_format import kv_html
from ui.services import Services


def status_html(info: dict) -> str:
    loaded = "loaded" if info["loaded"] else ("failed: " + info["load_error"] if info.get("load_error") else
                                                 "loading…")
    rows = [
        ("Base model", f"`{info['base_model']}` ({loaded})"),
        ("Embedding model", info["embed_model"]),
        ("Serving backend", info["backend"]),
        ("Device", info["device"]),
        ("Vector store (Chroma)", info["chroma"]),
        ("Data folder", f"`{info['data_folder']}`"),
        ("Scheduler", info["scheduler"]),
        ("API key", info["api_key"]),
    ]
    backend = info.get("backend_info") or {}
    if backend.get("adapters"):
        rows.append(("Adapters loaded", ", ".join(f"`{a}`" for a in backend["adapters"])))
    if backend.get("version"):
        rows.append(("vLLM version", backend["version"]))
    if backend.get("error"):  # the vLLM server went away after start-up
        rows.append(("Backend error", backend["error"] + " (agentmem vllm start)"))
    return kv_html(rows)


def pools_table(info: dict) -> pd.DataFrame:
    cols = {
        "pool": "pool",
        "sources": "sources",
        "chunks": "chunks",
        "facts": "facts",
        "pending": "pending facts",
        "open_misses": "open misses",
        "adapter": "serving",
    }
    rows = [{label: p.get(key, "") for key, label in cols.items()} for p in info["pools"]]
    return pd.DataFrame(rows, columns=list(cols.values()))


def build(services: Services, pool_dd: gr.Dropdown):
    with gr.Tab("Status", id="status") as tab:
        with gr.Row():
            gr.Markdown("### This server")
            refresh_btn = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        summary = gr.HTML(elem_id="am-status")
        gr.Markdown("### Pools")
        pools = gr.Dataframe(interactive=False, elem_id="am-pools")

    def load(_pool: str | None = None):
        info = services.status()
        return status_html(info), pools_table(info)

    for trigger in (tab.select, refresh_btn.click):
        trigger(load, [pool_dd], [summary, pools], api_visibility="private")
    return load, [summary, pools]
