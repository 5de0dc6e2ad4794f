"""A crash between the memory-log write and the memory-collection write of a taught fact is repaired by
`sync_memory`: the log is the record of truth."""

from agentmem.memory import Fact, FactStatus, InMemoryLog
from graphs.facts import sync_memory
from tests.fakes import FakeKnowledge


def test_sync_writes_back_logged_facts_and_drops_stale_ones():
    memory, knowledge = InMemoryLog(), FakeKnowledge()
    kept = memory.add_fact(Fact(pool="p", text="The sky on Vell is green."))
    knowledge.remember("p", kept.id, kept.text)
    lost = memory.add_fact(Fact(pool="p", text="Ada owns a red kayak."))  # crashed before remember()
    dead = memory.add_fact(Fact(pool="p", text="Bo likes tea."))
    knowledge.remember("p", dead.id, dead.text)
    memory.set_fact_status("p", dead.id, FactStatus.REJECTED)  # crashed before forget()
    other = memory.add_fact(Fact(pool="q", text="Quin is in pool q."))

    assert sync_memory(memory, knowledge, "p") == (1, 1)
    assert knowledge.memory_ids("p") == {kept.id, lost.id}
    assert knowledge.memory_ids("q") == set()  # another pool is not touched
    assert sync_memory(memory, knowledge, "p") == (0, 0)  # nothing left to do
    assert sync_memory(memory, knowledge, "q") == (1, 0) and knowledge.memory_ids("q") == {other.id}
