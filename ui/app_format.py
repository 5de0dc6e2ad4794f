"""How records look in the app: chat messages with their sources, and table rows for hits, sources, facts,
misses, runs and adapters.

Pure functions from the product's records (Reply, Hit, Fact, ...) to Gradio values (message dicts, markdown,
pandas DataFrames), so the tabs stay small and these can be tested without a browser. No I/O here.
"""

from __future__ import annotations

import html
import os
import re
from datetime import datetime
from typing import Any

import pandas as pd

EXCERPT = 280


def adapter_label(adapter: str | None) -> str:
    return f"adapter {adapter}" if adapter else "base model"


def where(source: dict[str, Any]) -> str:
    """`file — section (page 3)` / `(lines 10-24)`, or `taught fact` for a memory."""
    if source.get("kind") == "memory":
        return f"taught fact `{source.get('fact_id', '')}`"
    name = os.path.basename(str(source.get("source", ""))) or str(source.get("title", ""))
    text = f"**{md_escape(name)}**"
    if source.get("section"):
        text += f" — {md_escape(str(source['section']))}"
    if source.get("page"):
        text += f" (page {source['page']})"
    elif source.get("line_start"):
        text += f" (lines {source['line_start']}-{source.get('line_end') or source['line_start']})"
    return text


_HEADING = re.compile(r"(?m)^\s*#{1,6}\s+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """One line of plain text: heading marks dropped (the section is shown beside it), spaces collapsed."""
    text = " ".join(_HEADING.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def sources_markdown(sources: list[dict[str, Any]]) -> str:
    lines = []
    for i, s in enumerate(sources, 1):
        lines.append(f"{i}. {where(s)} · score {float(s.get('score', 0)):.2f}")
        if s.get("text"):  # document text is shown, never rendered: escape what markdown would interpret
            lines.append("   > " + md_escape(excerpt(s["text"])))
    return "\n".join(lines)


def reply_messages(reply) -> list[dict[str, Any]]:
    """The answer bubble plus one collapsible note: its sources, the fact it saved, or the miss it logged."""
    answer = {"role": "assistant", "content": reply.answer or "(no answer)"}
    who = adapter_label(reply.adapter)
    if reply.intent in ("teach", "correct") and reply.fact_id:
        body = f"Fact `{reply.fact_id}` is stored and retrievable now; consolidation will train it."
        if reply.superseded:
            body += "\n\nIt replaces: " + ", ".join(f"`{f}`" for f in reply.superseded)
        note = {"title": "🧠 Saved to memory", "status": "done"}
    elif reply.sources:
        body = sources_markdown(reply.sources)
        note = {"title": f"📚 {len(reply.sources)} source{'s' if len(reply.sources) != 1 else ''} · {who}",
                "status": "done"}
    else:
        body = (
            'Nothing in this pool answered it, so it was logged as a miss. Teach me ("remember that ...") '
            "or upload a document that answers it."
            if reply.missed
            else "Answered without retrieved sources."
        )
        note = {"title": f"❔ No sources · {who}", "status": "done"}
    return [answer, {"role": "assistant", "content": body, "metadata": note}]


def history_messages(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A thread's stored turns (graphs.agent.Agent.history) as chat messages."""
    out: list[dict[str, Any]] = []
    for m in history:
        if m.get("role") == "user":
            out.append({"role": "user", "content": m.get("content", "")})
        elif m.get("role") == "assistant":
            out.append({"role": "assistant", "content": m.get("content", "")})
            if m.get("fact_id"):
                out.append({"role": "assistant", "content": f"Fact `{m['fact_id']}` stored.",
                            "metadata": {"title": "🧠 Saved to memory", "status": "done"}})
            elif m.get("sources"):
                n = len(m["sources"])
                out.append({"role": "assistant", "content": sources_markdown(m["sources"]), "metadata": {
                    "title": f"📚 {n} source{'s' if n != 1 else ''} · {adapter_label(m.get('adapter'))}",
                    "status": "done"}})
    return out


def kv_html(rows: list[tuple[str, str]]) -> str:
    """A two-column table of settings; values are escaped text (wrap code in `...` to show it monospace)."""
    def cell(v: str) -> str:
        parts = html.escape(str(v)).split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows)
    return f"<table class='am-kv'>{body}</table>"


def hits_html(hits) -> str:
    if not hits:
        return "<p class='am-muted'>No chunks found.</p>"
    cards = []
    for h in hits:
        loc = os.path.basename(h.source) + (f" — {h.section}" if h.section else "")
        if h.page:
            loc += f" · page {h.page}"
        elif h.line_start:
            loc += f" · lines {h.line_start}-{h.line_end or h.line_start}"
        cards.append(
            f"<div class='am-hit'><div class='am-hit-head'><span class='am-score'>{h.score:.2f}</span>"
            f"<span class='am-loc'>{html.escape(loc)}</span></div>"
            f"<div class='am-hit-text'>{html.escape(excerpt(h.text, 600))}</div></div>")
    return "\n".join(cards)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str) and value:
        return value[:16].replace("T", " ")
    return ""


def sources_table(sources) -> pd.DataFrame:
    rows = [
        {
            "file": os.path.basename(s.path),
            "kind": s.kind,
            "chunks": s.chunks,
            "ingested": _when(s.ingested_at),
            "path": s.path,
        }
        for s in sources
    ]
    return pd.DataFrame(rows, columns=["file", "kind", "chunks", "ingested", "path"])


FACT_COLUMNS = ["id", "status", "fact", "provenance", "adapter", "updated"]


def facts_table(facts) -> pd.DataFrame:
    rows = [
        {
            "id": f.id,
            "status": f.status.value,
            "fact": f.text,
            "provenance": f.provenance.kind.value
            + (f" (corrects {f.provenance.corrects})" if f.provenance.corrects else ""),
            "adapter": f.adapter_version or "",
            "updated": _when(f.updated_at),
        }
        for f in facts
    ]
    return pd.DataFrame(rows, columns=FACT_COLUMNS)


def misses_table(misses) -> pd.DataFrame:
    rows = [
        {
            "id": m.id,
            "status": m.status.value,
            "question": m.question,
            "best score": round(m.best_score or 0, 2),
            "resolved by": f"{m.resolved_by.kind.value}: {os.path.basename(m.resolved_by.ref)}"
            if m.resolved_by
            else "",
            "asked": _when(m.created_at),
        }
        for m in misses
    ]
    return pd.DataFrame(rows, columns=["id", "status", "question", "best score", "resolved by", "asked"])


def runs_table(runs) -> pd.DataFrame:
    rows = []
    for r in runs:
        checks = r.gate.get("checks") or []
        rows.append(
            {
                "run": r.id,
                "status": r.status.value,
                "stage": r.stage or "",
                "started": _when(r.started_at or r.created_at),
                "took": _duration(r.started_at, r.finished_at),
                "facts": len(r.fact_ids),
                "adapter": r.adapter_version or "",
                "gate": ", ".join(f"{'✓' if c.get('passed') else '✗'} {c.get('name')}" for c in checks)
                or (r.gate.get("reason") or r.error or ""),
            }
        )
    return pd.DataFrame(
        rows, columns=["run", "status", "stage", "started", "took", "facts", "adapter", "gate"]
    )


def _duration(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    s = int((end - start).total_seconds())
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


METRICS = {"recall": "recall", "heldout_recall": "held-out", "retention": "retention",
           "general_agreement": "general", "mc_accuracy": "MC acc."}


def adapters_table(adapters: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for a in adapters:
        m = a.get("metrics") or {}
        rows.append({"": "active" if a["active"] else "", "version": a["version"], "facts": a["fact_count"],
                     **{label: _num(m.get(key)) for key, label in METRICS.items()},
                     "serving name": a["serving_name"], "created": _when(a["created_at"])})
    return pd.DataFrame(rows, columns=["", "version", "facts", *METRICS.values(), "serving name", "created"])


def adapter_metrics_long(adapters: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (version, metric) for a line chart of metrics over versions."""
    rows = [{"version": a["number"], "metric": label, "value": float(a["metrics"][key])}
            for a in adapters for key, label in METRICS.items()
            if isinstance((a.get("metrics") or {}).get(key), int | float)]
    return pd.DataFrame(rows, columns=["version", "metric", "value"]).astype(
        {"version": "int64", "value": "float64"})


def loss_frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    # Explicit dtypes: an empty frame would be `object`, which the plot takes for categories, not numbers.
    return pd.DataFrame(points, columns=["step", "loss"]).astype({"step": "int64", "loss": "float64"})


def _num(v: Any) -> Any:
    return round(float(v), 3) if isinstance(v, int | float) else ""
