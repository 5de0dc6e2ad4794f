"""Build the agent graph and a small facade (`Agent`) that the CLI, the app and the evals call.

`build_graph(deps)` wires the nodes into a LangGraph `StateGraph`; `Agent.ask` / `Agent.stream` run one turn in a
thread (persisted by the checkpointer, so a thread resumes after a restart). `build_agent(settings)` assembles the
real parts. This module holds no prompt wording and no retrieval or storage logic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph import END, START, StateGraph

from agentmem.settings import Settings
from graphs.deps import AgentDeps
from graphs.nodes import Nodes, new_thread_id
from graphs.state import AgentState


def build_graph(deps: AgentDeps, checkpointer: Any = None):
    nodes = Nodes(deps)
    g = StateGraph(AgentState)
    g.add_node("understand", nodes.understand)
    g.add_node("retrieve", nodes.retrieve)
    g.add_node("grade", nodes.grade)
    g.add_node("answer", nodes.answer)
    g.add_node("log_miss", nodes.log_miss)
    g.add_node("memorize", nodes.memorize)
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", nodes.route, {"memorize": "memorize", "retrieve": "retrieve"})
    g.add_edge("retrieve", "grade")
    g.add_edge("grade", "answer")
    g.add_edge("answer", "log_miss")
    g.add_edge("log_miss", END)
    g.add_edge("memorize", END)
    return g.compile(checkpointer=checkpointer)


def open_checkpointer(settings: Settings):
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.home / "threads.sqlite", check_same_thread=False)  # SqliteSaver locks itself
    conn.execute("PRAGMA journal_mode = WAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


@dataclass
class Reply:
    answer: str
    thread: str
    pool: str
    intent: str
    sources: list[dict] = field(default_factory=list)
    missed: bool = False
    adapter: str | None = None
    fact_id: str | None = None
    superseded: list[str] = field(default_factory=list)
    miss_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer, "sources": self.sources, "missed": self.missed, "adapter": self.adapter,
            "thread": self.thread, "pool": self.pool, "intent": self.intent, "fact_id": self.fact_id,
            "superseded": self.superseded, "miss_id": self.miss_id,
        }


class Agent:
    def __init__(self, deps: AgentDeps, checkpointer: Any = None):
        self.deps = deps
        self.graph = build_graph(deps, checkpointer)
        self.has_threads = checkpointer is not None

    def stream(
        self, question: str, *, pool: str | None = None, thread: str | None = None, retrieval: bool = True
    ) -> Iterator[dict]:
        """Yield {"token": piece} while the answer is decoded, then {"reply": Reply}."""
        pool = pool or self.deps.settings.default_pool
        thread = thread or new_thread_id()
        config = {"configurable": {"thread_id": thread}}
        inputs = {"question": question, "pool": pool, "thread_id": thread, "retrieval": retrieval}
        final: dict = {}
        for mode, chunk in self.graph.stream(inputs, config, stream_mode=["custom", "values"]):
            if mode == "custom":
                yield chunk
            else:
                final = chunk
        yield {"reply": Reply(
            answer=final.get("answer", ""), thread=thread, pool=pool, intent=final.get("intent", "question"),
            sources=list(final.get("sources", [])), missed=bool(final.get("missed")), adapter=final.get("adapter"),
            fact_id=final.get("fact_id"), superseded=list(final.get("superseded", [])), miss_id=final.get("miss_id"),
        )}

    def ask(self, question: str, **kwargs: Any) -> Reply:
        for event in self.stream(question, **kwargs):
            if "reply" in event:
                return event["reply"]
        raise RuntimeError("the graph ended without a reply")

    def history(self, thread: str) -> list[dict]:
        if not self.has_threads:
            return []
        snap = self.graph.get_state({"configurable": {"thread_id": thread}})
        return list(snap.values.get("messages", [])) if snap and snap.values else []
