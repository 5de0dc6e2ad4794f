"""Resolving logged misses when later knowledge answers them: a taught fact, or a newly ingested document.

A miss is resolved when the new knowledge is now the best match for the missed question and clears the relevance
threshold; resolved misses become consolidation candidates. This module does not log misses (the graph does).
"""

from __future__ import annotations

from agentmem.memory import Resolution
from agentmem.settings import Settings
from graphs.deps import Knowledge


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
