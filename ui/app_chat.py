"""The Chat tab: streamed answers with their sources and the adapter that answered, threads (new, switch,
resume), teaching and correcting from the message box, and thumbs up/down stored as feedback.

Every turn goes through the agent (graphs.agent), exactly as the CLI's; this module only shows it. The message
list shown is kept in session state beside a note of which question/answer each bubble belongs to, for
feedback.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from agentmem.errors import AgentmemError
from agentmem.memory import Feedback, Rating
from graphs.nodes import new_thread_id
from ui.app_format import adapter_label, history_messages, reply_messages
from ui.services import Services

TIPS = """**Tips**
- Ask anything about your documents.
- Teach: *remember that the wifi is called Tern*
- Correct the last answer: *no, it is called Heron*
- 👍 / 👎 under an answer is stored as feedback.
"""
PLACEHOLDER = "Ask a question · teach with “remember that …” · correct with “no, …”"


def _view(entries: list[dict]) -> list[dict]:
    return [e["m"] for e in entries]


def _with_turns(messages: list[dict]) -> list[dict]:
    """Attach to each assistant bubble the question it answers (for feedback on a resumed thread)."""
    entries, question, answer = [], "", ""
    for m in messages:
        if m["role"] == "user":
            question, turn = m["content"], None
        else:
            if "metadata" not in m:
                answer = m["content"]
            turn = {"question": question, "answer": answer}
        entries.append({"m": m, "t": turn})
    return entries


def build(services: Services, pool_dd: gr.Dropdown) -> None:
    def thread_choices(pool: str) -> list[tuple[str, str]]:
        return [(t.label(), t.id) for t in services.threads.list(services.pool(pool))]

    def serving_note(pool: str) -> str:
        pool = services.pool(pool)
        active = services.rt.registry.active(pool)
        who = f"adapter **{active.version}** (`{active.serving_name}`)" if active else "the **base model**"
        pending = len(services.rt.memory.list_facts(pool, status="pending"))
        plural = "s" if pending != 1 else ""
        return f"Pool **{pool}** is answered by {who}.\n\n{pending} fact{plural} waiting for consolidation."

    with gr.Tab("Chat", id="chat"):
        thread_state = gr.State(None)
        entries_state = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=250, elem_classes="am-side"):
                thread_dd = gr.Dropdown(label="Thread", choices=[], value=None, interactive=True,
                                        info="Pick one to resume it", elem_id="am-thread")
                new_btn = gr.Button("+ New thread", size="sm", elem_id="am-new-thread")
                retrieval = gr.Checkbox(True, label="Look things up (documents and taught facts)",
                                        elem_id="am-retrieval")
                who = gr.Markdown(elem_id="am-serving", elem_classes="am-note")
                gr.Markdown(TIPS, elem_classes="am-tips")
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(
                    value=[],
                    height=560,
                    elem_id="am-chatbot",
                    label="agentmem",
                    show_label=False,
                    layout="bubble",
                    buttons=["copy"],
                    feedback_options=("Like", "Dislike"),
                    placeholder="<h3>Ask me something</h3>I answer from the documents and facts "
                    "of the selected pool, and I show my sources.",
                )
                with gr.Row():
                    msg = gr.Textbox(placeholder=PLACEHOLDER, show_label=False, scale=8, autofocus=True,
                                     elem_id="am-message", max_lines=6)
                    send = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="am-send")

    def respond(message: str, pool: str, retrieval_on: bool, entries: list[dict] | None, thread: str | None):
        message = (message or "").strip()
        if not message:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        try:
            pool = services.pool(pool)
            agent = services.agent
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc
        thread = thread or new_thread_id()
        entries = list(entries or []) + [{"m": {"role": "user", "content": message}, "t": None}]
        thinking = {"role": "assistant", "content": "",
                    "metadata": {"title": "Looking things up…", "status": "pending"}}
        yield _view(entries) + [thinking], entries, "", thread, gr.skip(), gr.skip()
        parts: list[str] = []
        reply = None
        try:
            for event in agent.stream(message, pool=pool, thread=thread, retrieval=retrieval_on):
                if "token" in event:
                    parts.append(event["token"])
                    yield _view(entries) + [{"role": "assistant", "content": "".join(parts)}], gr.skip(), \
                        gr.skip(), gr.skip(), gr.skip(), gr.skip()
                elif "reply" in event:
                    reply = event["reply"]
        except AgentmemError as exc:
            raise gr.Error(str(exc)) from exc
        turn = {"question": message, "answer": reply.answer, "thread": thread, "pool": pool}
        entries = entries + [{"m": m, "t": turn} for m in reply_messages(reply)]
        services.threads.touch(pool, thread, message)
        yield (_view(entries), entries, gr.skip(), thread,
               gr.update(choices=thread_choices(pool), value=thread), serving_note(pool))

    inputs = [msg, pool_dd, retrieval, entries_state, thread_state]
    outputs = [chatbot, entries_state, msg, thread_state, thread_dd, who]
    send.click(respond, inputs, outputs, api_name="chat")
    msg.submit(respond, inputs, outputs, api_visibility="private")

    def new_thread(pool: str):
        return [], [], None, gr.update(choices=thread_choices(pool), value=None)

    new_btn.click(
        new_thread, [pool_dd], [chatbot, entries_state, thread_state, thread_dd], api_visibility="private"
    )

    def open_thread(thread: str | None, pool: str):
        if not thread:
            return [], [], None
        entries = _with_turns(history_messages(services.agent.history(thread)))
        for e in entries:
            if e["t"] is not None:
                e["t"] |= {"thread": thread, "pool": services.pool(pool)}
        return _view(entries), entries, thread

    thread_dd.input(open_thread, [thread_dd, pool_dd], [chatbot, entries_state, thread_state],
                    api_visibility="private")

    def pool_changed(pool: str):
        return [], [], None, gr.update(choices=thread_choices(pool), value=None), serving_note(pool)

    pool_dd.change(pool_changed, [pool_dd], [chatbot, entries_state, thread_state, thread_dd, who],
                   api_visibility="private")

    def on_like(entries: list[dict] | None, pool: str, data: gr.LikeData):
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn = (entries or [])[index]["t"] if 0 <= index < len(entries or []) else None
        if not turn or data.liked in (None, ""):
            return
        rating = Rating.UP if data.liked is True or data.liked == "Like" else Rating.DOWN
        services.rt.memory.add_feedback(
            Feedback(
                pool=turn.get("pool") or services.pool(pool),
                thread_id=turn.get("thread"),
                question=turn["question"],
                answer=turn["answer"],
                rating=rating,
            )
        )
        gr.Info(
            "Thanks — feedback saved " + ("👍" if rating is Rating.UP else "👎 (say “no, …” to correct it)")
        )

    chatbot.like(on_like, [entries_state, pool_dd], None, api_visibility="private")

    def load(pool: str) -> tuple[Any, Any]:
        return gr.update(choices=thread_choices(pool)), serving_note(pool)

    return load, [thread_dd, who]


__all__ = ["adapter_label", "build"]
