"""The Consolidation tab: start a run for the pool, watch it live (stage, loss curve, tokens/s, ETA), cancel
it; the history of runs with their gate results; adapter versions with their metrics over versions, activate
and roll back; and the scheduler's settings.

A run works in a background thread of the server (ui.jobs); a timer polls its progress once a second. Runs
started by the CLI in another process show up through the memory log. No training logic here.
"""

from __future__ import annotations

import html
import json

import gradio as gr

from agentmem.consolidate import STAGES
from agentmem.errors import AgentmemError, Busy
from ui.app_format import adapter_metrics_long, adapters_table, kv_html, loss_frame, runs_table
from ui.services import Services

STATUS_ICON = {"running": "⏳", "queued": "⏳", "succeeded": "✅", "rejected": "🛑", "failed": "❌",
               "cancelled": "⏹"}


def _stages_html(current: str, active: bool) -> str:
    """The recipe's stages as chips: done, the one running now, and those still to come."""
    idx = STAGES.index(current) if current in STAGES else -1
    chips = []
    for i, stage in enumerate(STAGES):
        cls = "am-chip-done" if i < idx or (i == idx and not active) else "am-chip-now" if i == idx else ""
        chips.append(f"<span class='am-chip {cls}'>{stage}</span>")
    return "<div class='am-stages'>" + "<span class='am-arrow'>›</span>".join(chips) + "</div>"


def _plot(frame):
    # Gradio 6 plots that once received an empty frame draw no lines for later data; None keeps them usable.
    return None if frame.empty else frame


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "–"
    s = int(s)
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def live_html(job: dict | None, run=None) -> str:
    """The live panel: this server's job if any, else the pool's latest run from the memory log."""
    if job is None and run is None:
        return "<div class='am-card am-muted'>No consolidation run yet for this pool.</div>"
    if job is None:
        icon = STATUS_ICON.get(run.status.value, "")
        where = " (in another process)" if run.active else ""
        reason = (run.gate or {}).get("reason") or run.error or ""
        return (
            f"<div class='am-card'><b>{icon} Run {run.id}</b> — {run.status.value}{where}"
            f"<div class='am-muted'>stage {run.stage or '–'}{' · ' + html.escape(reason) if reason else ''}"
            "</div></div>"
        )
    status = job["status"]
    icon = STATUS_ICON.get(status, "")
    trigger = html.escape(job["trigger"])
    lines = [f"<b>{icon} Run {job['run_id']}</b> — {status} · started by {trigger} · {job['elapsed_s']:.0f} s"]
    lines.append(_stages_html(job["stage"], job["active"]))
    if job["total"]:
        pct = 100 * job["step"] / max(job["total"], 1)
        loss = job["loss"][-1]["loss"] if job["loss"] else None
        lines.append(f"<div class='am-bar'><div style='width:{pct:.0f}%'></div></div>"
                     f"<div class='am-stats'>step {job['step']}/{job['total']}"
                     f"{f' · loss {loss:.3f}' if loss is not None else ''}"
                     f" · {job['tokens_per_s'] or 0:,.0f} tokens/s · ETA {_fmt_eta(job['eta_s'])}</div>")
    outcome = job.get("outcome") or {}
    if outcome:
        verdict = (
            f"promoted: adapter <b>{outcome['adapter_version']}</b> now answers"
            if outcome.get("promoted")
            else html.escape(outcome.get("reason") or "not promoted")
        )
        checks = " ".join(
            f"<span class='am-check {'am-pass' if c.get('passed') else 'am-fail'}'>"
            f"{'✓' if c.get('passed') else '✗'} {html.escape(str(c.get('name')))} {c.get('value')}</span>"
            for c in outcome.get("checks") or []
        )
        lines.append(f"<div>{verdict}</div><div>{checks}</div>")
    if job.get("error"):
        lines.append(f"<div class='am-fail'>{html.escape(job['error'])}</div>")
    return "<div class='am-card'>" + "".join(f"<div>{x}</div>" for x in lines) + "</div>"


def build(services: Services, pool_dd: gr.Dropdown):
    s = services.settings

    with gr.Tab("Consolidation", id="consolidation") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.Markdown(
                    "### Train taught facts into the pool's adapter\nPending facts are filtered (known or "
                    "unverifiable ones are not trained), turned into question/answer pairs with rehearsal, "
                    "trained as a LoRA adapter, evaluated, and promoted only if the gate passes."
                )
                with gr.Row():
                    start_btn = gr.Button("Start consolidation", variant="primary", elem_id="am-start-run")
                    cancel_btn = gr.Button("Cancel run", variant="stop", elem_id="am-cancel-run")
                live = gr.HTML(elem_id="am-run-live")
                loss_plot = gr.LinePlot(None, x="step", y="loss",
                                        title="Training loss", height=240, elem_id="am-loss", x_title="step",
                                        y_title="loss")
            with gr.Column(scale=2):
                gr.Markdown("### Scheduler")
                gr.HTML(kv_html([
                    ("state", services.scheduler.describe()),
                    ("consolidate_min_pending", str(s.consolidate_min_pending)),
                    ("consolidate_every_minutes", f"{s.consolidate_every_minutes:g}"),
                    ("scheduler_poll_s", f"{s.scheduler_poll_s:g}"),
                    ("training overrides", f"`{json.dumps(s.consolidate_train)}`"),
                    ("gate", (f"recall ≥ {s.gate_min_recall}, retention ≥ {s.gate_min_retention}, "
                              f"general agreement ≥ {s.gate_min_general_agreement}")),
                ]), elem_id="am-scheduler")
                run_detail = gr.JSON(label="Run details (click a run below)", elem_id="am-run-detail")
        gr.Markdown("### Runs")
        runs_df = gr.Dataframe(interactive=False, wrap=True, elem_id="am-runs", max_height=300,
                               column_widths=["17%", "9%", "8%", "12%", "7%", "5%", "7%", "35%"])
        gr.Markdown("### Adapter versions")
        adapters_df = gr.Dataframe(interactive=False, wrap=True, elem_id="am-adapters", max_height=300,
                                   column_widths=["8%", "7%", "6%", "8%", "8%", "8%", "8%", "8%", "22%", "17%"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                serving = gr.Markdown(elem_id="am-active-adapter", elem_classes="am-note")
                version_dd = gr.Dropdown(label="Version to serve", choices=[], elem_id="am-version")
                with gr.Row():
                    activate_btn = gr.Button("Activate", variant="primary", min_width=100, elem_id="am-activate")
                    rollback_btn = gr.Button("Roll back", min_width=100, elem_id="am-rollback")
                gr.Markdown("A running chat picks the change up on its next question; no restart.",
                            elem_classes="am-muted")
            with gr.Column(scale=3):
                metrics_plot = gr.LinePlot(
                    None,
                    x="version",
                    y="value",
                    color="metric",
                    title="Metrics by version",
                    height=260,
                    y_lim=[0, 1],
                    elem_id="am-metrics",
                )
        timer = gr.Timer(1.0)
        seen = gr.State(None)  # (run id, status) last shown: tables refresh only when it changes

    def live_now(pool: str):
        pool = services.pool(pool)
        job = services.jobs.latest(pool)
        snap = services.jobs.snapshot(job.run_id) if job else None
        run = None
        if snap is None or not snap["active"]:
            runs = services.rt.memory.list_runs(pool, limit=1)
            run = runs[0] if runs else None
            if run is not None and snap is not None and run.id != snap["run_id"]:
                snap = None  # a newer run (another process) is more interesting
        loss = _plot(loss_frame(snap["loss"] if snap else []))
        key = ((snap["run_id"], snap["status"], snap["stage"]) if snap else
               ((run.id, run.status.value, run.stage) if run else None))
        return live_html(snap, run), loss, key

    def tables(pool: str):
        pool = services.pool(pool)
        adapters = services.adapters(pool)
        active = next((a for a in adapters if a["active"]), None)
        note = (f"Serving **{active['version']}** (`{active['serving_name']}`) for pool **{pool}**." if active
                else f"Pool **{pool}** is served by the **base model**.")
        return (
            runs_table(services.rt.memory.list_runs(pool, limit=50)),
            adapters_table(adapters),
            _plot(adapter_metrics_long(adapters)),
            gr.update(choices=[a["version"] for a in adapters], value=None),
            note,
        )

    table_outputs = [runs_df, adapters_df, metrics_plot, version_dd, serving]

    def poll(pool: str, last):
        html_, loss, key = live_now(pool)
        if key == (tuple(last) if last else None):
            return (html_, loss, gr.skip(), *[gr.skip()] * len(table_outputs))
        return (html_, loss, key, *tables(pool))

    timer.tick(poll, [pool_dd, seen], [live, loss_plot, seen, *table_outputs], show_progress="hidden",
               api_visibility="private")

    def refresh(pool: str):
        html_, loss, key = live_now(pool)
        return (html_, loss, key, *tables(pool))

    for trigger in (pool_dd.change, tab.select):
        trigger(refresh, [pool_dd], [live, loss_plot, seen, *table_outputs], api_visibility="private")

    def start(pool: str):
        try:
            job = services.jobs.start(services.pool(pool))
        except Busy as exc:
            gr.Warning(f"{exc.message}. {exc.hint or ''}", title="A run is already going")
            return refresh(pool)
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"Run {job.run_id} started")
        return refresh(pool)

    start_btn.click(start, [pool_dd], [live, loss_plot, seen, *table_outputs], api_name="consolidate")

    def cancel(pool: str):
        run_id = services.jobs.cancel(services.pool(pool))
        if run_id:
            gr.Info(f"Asked run {run_id} to stop; it stops at its next step and changes nothing.")
        else:
            gr.Warning("No run is going for this pool.")

    cancel_btn.click(cancel, [pool_dd], None, api_visibility="private")

    def switch(action: str):
        def run(pool: str, version: str | None):
            try:
                if action == "activate":
                    if not version:
                        raise gr.Error("Pick a version first.")
                    services.activate(pool, version)
                else:
                    services.rollback(pool)
            except AgentmemError as exc:
                raise gr.Error(str(exc)) from exc
            return tables(pool)

        return run

    activate_btn.click(switch("activate"), [pool_dd, version_dd], table_outputs, api_visibility="private")
    rollback_btn.click(switch("rollback"), [pool_dd, version_dd], table_outputs, api_visibility="private")

    def select_run(pool: str, evt: gr.SelectData):
        row = evt.row_value or []
        if not row:
            return gr.skip()
        return services.run_status(str(row[0]), pool)

    runs_df.select(select_run, [pool_dd], run_detail, api_visibility="private")
    return refresh, [live, loss_plot, seen, *table_outputs]
