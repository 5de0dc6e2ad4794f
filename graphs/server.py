"""Entry point for LangGraph's own tooling (`langgraph.json`): the agent graph built from the real parts.

LangGraph's server brings its own checkpointer, so the graph is compiled without one here. Settings come from the
environment (AGENTMEM_*), as for the CLI.
"""

from __future__ import annotations

from agentmem.settings import load_settings
from graphs.agent import build_graph
from graphs.deps import AgentDeps
from graphs.runtime import AgentRuntime


def make_graph():
    rt = AgentRuntime(load_settings())
    deps = AgentDeps(settings=rt.settings, llm=rt.backend, knowledge=rt.knowledge, memory=rt.memory,
                     adapter_for=rt.serving.adapter_for, use_adapter=rt.serving.use)
    return build_graph(deps)
