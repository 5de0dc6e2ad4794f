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


def sync_memory(memory, knowledge: Knowledge, pool: str) -> tuple[int, int]:
    """Make the memory collection hold exactly the pool's active facts, after a crash between the two writes (the
    log is written first): (facts written back, stale entries removed). Only the differences are embedded."""
    facts = memory.list_facts(pool)
    active = {f.id: f for f in facts if f.active}
    held = knowledge.memory_ids(pool)
    missing = [f for i, f in active.items() if i not in held]
    stale = [i for i in held if i not in active]
    for fact in missing:
        knowledge.remember(pool, fact.id, fact.text, {"provenance": fact.provenance.kind.value})
    for fact_id in stale:
        knowledge.forget(pool, fact_id)
    return len(missing), len(stale)
