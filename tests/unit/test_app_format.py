"""How the app shows records: chat notes for sources / saved facts / misses, escaping of document text, tables
and plot frames (numeric dtypes even when empty), and the live consolidation panel."""

from types import SimpleNamespace

from agentmem.memory import ConsolidationRun, RunStatus
from ui.app_consolidation import live_html
from ui.app_format import (
    adapter_metrics_long,
    adapters_table,
    history_messages,
    loss_frame,
    reply_messages,
    runs_table,
    sources_markdown,
)


def reply(**kw):
    base = {"answer": "It takes 412 days.", "intent": "question", "sources": [], "missed": False, "adapter": None,
            "fact_id": None, "superseded": []}
    return SimpleNamespace(**(base | kw))


DOC = {"kind": "document", "source": "/data/uploads/default/orbit.md", "section": "Orbits", "score": 0.83,
       "text": "# Orbits\n\nThe *Zorblax* orbit takes 412 days. <img src=x onerror=alert(1)>", "line_start": 3,
       "line_end": 5}


def test_answer_with_sources_gets_a_collapsible_note_naming_file_lines_score_and_adapter():
    answer, note = reply_messages(reply(sources=[DOC], adapter="default-v2-abc"))
    assert answer == {"role": "assistant", "content": "It takes 412 days."}
    assert note["metadata"] == {"title": "📚 1 source · adapter default-v2-abc", "status": "done"}
    assert "**orbit.md** — Orbits (lines 3-5) · score 0.83" in note["content"]


def test_document_text_is_escaped_not_rendered():
    text = sources_markdown([DOC])
    assert "\\*Zorblax\\*" in text and "\\<img" in text and "# Orbits" not in text


def test_teach_and_miss_notes():
    _, saved = reply_messages(reply(intent="teach", fact_id="fact_1", superseded=["fact_0"], answer="Got it"))
    assert saved["metadata"]["title"] == "🧠 Saved to memory" and "`fact_0`" in saved["content"]
    _, missed = reply_messages(reply(missed=True))
    assert missed["metadata"]["title"] == "❔ No sources · base model" and "logged as a miss" in missed["content"]


def test_thread_history_becomes_messages_with_notes():
    msgs = history_messages([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "sources": [DOC], "adapter": None},
        {"role": "user", "content": "remember that x"},
        {"role": "assistant", "content": "Got it", "fact_id": "fact_9"},
    ])
    assert [m["role"] for m in msgs] == ["user", "assistant", "assistant", "user", "assistant", "assistant"]
    assert msgs[2]["metadata"]["title"].startswith("📚 1 source") and "fact_9" in msgs[5]["content"]


def test_plot_frames_are_numeric_even_when_empty():
    assert str(loss_frame([]).dtypes["loss"]) == "float64"
    assert str(adapter_metrics_long([]).dtypes["value"]) == "float64"
    rows = [{"number": 1, "metrics": {"recall": 0.5, "retention": None}},
            {"number": 2, "metrics": {"recall": 1.0, "general_agreement": 0.7}}]
    long = adapter_metrics_long(rows)
    assert long.values.tolist() == [[1, "recall", 0.5], [2, "recall", 1.0], [2, "general", 0.7]]


def test_adapters_and_runs_tables():
    table = adapters_table([{"active": True, "version": "v1", "fact_count": 2, "metrics": {"recall": 0.91234},
                             "serving_name": "default-v1-x", "created_at": "2026-01-02T03:04:05Z", "number": 1}])
    assert table.iloc[0]["recall"] == 0.912 and table.iloc[0][""] == "active"
    run = ConsolidationRun(pool="p", status=RunStatus.REJECTED, gate={"checks": [
        {"name": "recall", "passed": False}, {"name": "canaries", "passed": True}]})
    assert runs_table([run]).iloc[0]["gate"] == "✗ recall, ✓ canaries"


def test_live_panel_shows_stages_progress_and_gate():
    job = {"run_id": "run_1", "pool": "p", "trigger": "app", "status": "running", "stage": "train", "step": 3,
           "total": 4, "loss": [{"step": 3, "loss": 0.25}], "tokens_per_s": 1200.0, "eta_s": 75, "elapsed_s": 30,
           "outcome": None, "error": None, "active": True}
    html = live_html(job)
    assert "am-chip am-chip-now'>train<" in html and "am-chip am-chip-done'>synthesize<" in html
    assert "step 3/4 · loss 0.250 · 1,200 tokens/s · ETA 1m 15s" in html
    done = job | {"status": "rejected", "active": False, "outcome": {"promoted": False, "reason": "recall 0.0",
                                                                     "checks": [{"name": "recall", "passed": False,
                                                                                 "value": 0.0}]}}
    assert "recall 0.0" in live_html(done) and "am-fail" in live_html(done)
    assert "another process" in live_html(None, ConsolidationRun(pool="p", status=RunStatus.RUNNING))
