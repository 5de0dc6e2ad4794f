"""Resolving logged misses when later knowledge answers them: a taught fact, or a newly ingested document.

A miss is resolved when the new knowledge is now the best match for the missed question and clears the relevance
threshold; resolved misses become consolidation candidates. This module does not log misses (the graph does).
"""

from __future__ import annotations

from agentmem.llm.base import GenerationConfig
from agentmem.memory import Resolution
from agentmem.normalize import is_refusal
from agentmem.settings import Settings
from graphs.deps import AgentDeps, Knowledge


def resolve_misses_with_fact(memory, knowledge: Knowledge, settings: Settings, pool: str, fact_id: str) -> list[str]:
    resolved = []
    for miss in memory.list_misses(pool, status="open"):
        for hit in knowledge.search_memory(miss.question, pool, k=1):
            hit_id = str(hit.metadata.get("fact_id") or hit.chunk_id)
            if hit_id == fact_id and hit.score >= settings.relevance_threshold:
                memory.resolve_miss(pool, miss.id, Resolution(kind="fact", ref=fact_id))
                resolved.append(miss.id)
    return resolved


def resolve_misses_with_documents(memory, knowledge: Knowledge, settings: Settings, pool: str) -> list[str]:
    """After an ingest: open misses whose question now retrieves a relevant document chunk."""
    resolved = []
    for miss in memory.list_misses(pool, status="open"):
        hits = knowledge.search(miss.question, pool, k=1)
        if hits and hits[0].score >= settings.relevance_threshold and hits[0].score > (miss.best_score or 0.0):
            memory.resolve_miss(pool, miss.id, Resolution(kind="document", ref=hits[0].source))
            resolved.append(miss.id)
    return resolved


def document_answerer(deps: AgentDeps):
    """For consolidation: answer a missed question from the pool's documents alone (the base model reading the
    relevant chunks, as the agent would), so that knowledge looked up in documents can be trained. None when no
    chunk is relevant or the model declines."""
    from graphs.nodes import answer_messages, doc_source

    def answer(pool: str, question: str) -> tuple[str, list[str]] | None:
        hits = [doc_source(h) for h in deps.knowledge.search(question, pool, k=deps.settings.top_k)]
        hits = [h for h in hits if h["score"] >= deps.settings.relevance_threshold]
        if not hits:
            return None
        config = GenerationConfig(max_new_tokens=deps.settings.max_new_tokens)
        text = deps.llm.generate(answer_messages(question, hits, []), config).text.strip()
        if not text or is_refusal(text):
            return None
        return text, [h["source"] for h in hits]

    return answer
