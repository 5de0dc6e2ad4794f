"""Changing taught facts by hand (CLI, app, API): the memory log and the pool's memory collection together.

A fact that is rejected, deleted or superseded must stop being retrievable at once, and an edited fact must be
retrieved by its new text, so each operation here writes both stores (log first: it is the record of truth; the
collection is rebuilt from it by `sync_memory`). It does not train or untrain adapters.
"""

from __future__ import annotations

from agentmem.factkey import fact_slot
from agentmem.memory import Fact, FactStatus
from graphs.deps import Knowledge


def edit_fact(memory, knowledge: Knowledge, pool: str, fact_id: str, text: str) -> Fact:
    slot = fact_slot(text)
    fact = memory.update_fact(pool, fact_id, text=text, subject=slot[0] if slot else "", key=slot[1] if slot else "")
    if fact.active:
        knowledge.remember(pool, fact.id, fact.text, {"provenance": fact.provenance.kind.value})
    return fact


def reject_fact(memory, knowledge: Knowledge, pool: str, fact_id: str) -> Fact:
    fact = memory.set_fact_status(pool, fact_id, FactStatus.REJECTED)
    knowledge.forget(pool, fact_id)
    return fact


def delete_fact(memory, knowledge: Knowledge, pool: str, fact_id: str) -> Fact:
    fact = memory.delete_fact(pool, fact_id)
    knowledge.forget(pool, fact_id)
    return fact


def sync_memory(memory, knowledge: Knowledge, pool: str) -> int:
    """Make the memory collection hold exactly the pool's active facts (after a crash between the two writes)."""
    n = 0
    for fact in memory.list_facts(pool):
        if fact.active:
            knowledge.remember(pool, fact.id, fact.text, {"provenance": fact.provenance.kind.value})
            n += 1
        else:
            knowledge.forget(pool, fact.id)
    return n
