"""The Memory tab: the pool's taught facts and its misses as tables, with a status filter and search; teach a
fact; select a fact to see its provenance and adapter version, then edit, reject or delete it.

Changes go through graphs.facts so the memory collection in Chroma follows the log at once; teaching goes
through the agent, as in chat. Nothing is trained here (see the Consolidation tab).
"""

from __future__ import annotations

import gradio as gr

from agentmem.errors import AgentmemError
from graphs.facts import delete_fact, edit_fact, reject_fact
from ui.app_format import facts_table, misses_table
from ui.services import Services

FACT_STATUSES = ["all", "pending", "consolidated", "known", "rejected", "superseded"]


def build(services: Services, pool_dd: gr.Dropdown):
    def memory():  # opened lazily by the runtime
        return services.rt.memory

    with gr.Tab("Memory", id="memory") as tab:  # noqa: SIM117 - nesting mirrors the layout
        with gr.Tabs():
            with gr.Tab("Facts", id="facts"):
                with gr.Row():
                    teach_box = gr.Textbox(placeholder="Teach a fact, e.g. The office wifi is called Tern.",
                                           show_label=False, scale=6, elem_id="am-teach")
                    teach_btn = gr.Button(
                        "Teach", variant="primary", scale=1, min_width=100, elem_id="am-teach-btn"
                    )
                with gr.Row():
                    status_dd = gr.Dropdown(FACT_STATUSES, value="all", label="Status", scale=1,
                                            elem_id="am-fact-status")
                    search = gr.Textbox(label="Search", placeholder="words in the fact", scale=3,
                                        elem_id="am-fact-search")
                    refresh_btn = gr.Button("Refresh", scale=1, min_width=100, elem_id="am-facts-refresh")
                facts_df = gr.Dataframe(interactive=False, wrap=True, elem_id="am-facts", max_height=380,
                                        column_widths=["17%", "11%", "38%", "14%", "7%", "13%"])
                gr.Markdown("Click a row to select a fact.", elem_classes="am-muted")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        fact_id = gr.Textbox(label="Selected fact", interactive=False, elem_id="am-fact-id")
                        fact_text = gr.Textbox(label="Text", lines=2, elem_id="am-fact-text")
                        with gr.Row():
                            save_btn = gr.Button("Save edit", variant="primary", elem_id="am-fact-save")
                            reject_btn = gr.Button("Reject", elem_id="am-fact-reject")
                            delete_btn = gr.Button("Delete", variant="stop", elem_id="am-fact-delete")
                    with gr.Column(scale=2):
                        detail = gr.JSON(label="Provenance and history", elem_id="am-fact-detail")
            with gr.Tab("Misses", id="misses"):
                gr.Markdown(
                    "Questions nothing in the pool answered. Teaching a fact or ingesting a document that "
                    "answers one resolves it; resolved misses are trained at the next consolidation."
                )
                with gr.Row():
                    miss_status = gr.Dropdown(
                        ["all", "open", "resolved"], value="all", label="Status", scale=1
                    )
                    miss_refresh = gr.Button("Refresh", scale=1, min_width=100)
                misses_df = gr.Dataframe(interactive=False, wrap=True, elem_id="am-misses", max_height=420)

    def facts(pool: str, status: str, q: str):
        status = None if status in (None, "", "all") else status
        return facts_table(
            memory().list_facts(services.pool(pool), status=status, search=(q or "").strip() or None)
        )

    def misses(pool: str, status: str):
        status = None if status in (None, "", "all") else status
        return misses_table(memory().list_misses(services.pool(pool), status))

    filters = [pool_dd, status_dd, search]
    for trigger in (status_dd.change, search.submit, refresh_btn.click, pool_dd.change, tab.select):
        trigger(facts, filters, facts_df, api_visibility="private")
    for trigger in (miss_status.change, miss_refresh.click, pool_dd.change, tab.select):
        trigger(misses, [pool_dd, miss_status], misses_df, api_visibility="private")

    def select(pool: str, evt: gr.SelectData):
        row = evt.row_value or []
        if not row:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            fact = memory().get_fact(services.pool(pool), str(row[0]))
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc
        return fact.id, fact.text, fact.model_dump(mode="json")

    facts_df.select(select, [pool_dd], [fact_id, fact_text, detail], api_visibility="private")

    def change(action: str):
        def run(pool: str, fid: str, text: str, status: str, q: str):
            if not fid:
                raise gr.Error("Select a fact in the table first.")
            pool = services.pool(pool)
            kb = services.rt.knowledge
            try:
                if action == "edit":
                    fact = edit_fact(memory(), kb, pool, fid, text)
                elif action == "reject":
                    fact = reject_fact(memory(), kb, pool, fid)
                else:
                    fact = delete_fact(memory(), kb, pool, fid)
            except AgentmemError as exc:
                raise gr.Error(str(exc)) from exc
            gr.Info(f"{action.capitalize()}{'d' if action == 'delete' else 'ed'} {fact.id}")
            if action == "delete":
                return facts(pool, status, q), "", "", None
            return facts(pool, status, q), fact.id, fact.text, fact.model_dump(mode="json")

        return run

    outs = [facts_df, fact_id, fact_text, detail]
    ins = [pool_dd, fact_id, fact_text, status_dd, search]
    save_btn.click(change("edit"), ins, outs, api_visibility="private")
    reject_btn.click(change("reject"), ins, outs, api_visibility="private")
    delete_btn.click(change("delete"), ins, outs, api_visibility="private")

    def teach(text: str, pool: str, status: str, q: str):
        try:
            reply = services.teach(text or "", pool)
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(reply.answer)
        return "", facts(pool, status, q)

    teach_btn.click(teach, [teach_box, pool_dd, status_dd, search], [teach_box, facts_df], api_name="teach")
    teach_box.submit(
        teach, [teach_box, pool_dd, status_dd, search], [teach_box, facts_df], api_visibility="private"
    )

    def load(pool: str):
        return facts(pool, "all", ""), misses(pool, "all")

    return load, [facts_df, misses_df]
