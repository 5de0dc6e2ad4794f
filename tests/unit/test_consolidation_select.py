"""Consolidation's select stage (no training): pending facts, and misses that ingested documents resolved,
answered from those documents, each traced to its provenance in the data card; a miss already trained into a
registered adapter is not selected again."""

from pathlib import Path

from agentmem.consolidate import Consolidation
from agentmem.manifest import Manifest
from agentmem.memory import Fact, InMemoryLog, Miss, Resolution
from agentmem.registry import open_registry
from agentmem.synthesize import Example
from tests.fakes import FakeBackend

QUESTION = "How long is the Zelvan river?"


def setup(settings, answer):
    memory = InMemoryLog()
    fact = memory.add_fact(Fact(pool="p", text="The mascot of Brindle FC is a silver heron."))
    miss = memory.add_miss(Miss(pool="p", question=QUESTION))
    memory.resolve_miss("p", miss.id, Resolution(kind="document", ref="/docs/rivers.md"))
    open_miss = memory.add_miss(Miss(pool="p", question="Who built the Orvane Bridge?"))
    registry = open_registry(settings)
    job = Consolidation(settings, memory, registry, FakeBackend(), base_model_dir=Path("/nowhere"),
                        document_answer=answer)
    return job, fact, miss, open_miss, registry


def test_document_resolved_misses_become_candidates_with_their_provenance(settings):
    asked = []

    def answer(pool, question):
        asked.append((pool, question))
        return "The Zelvan river is 300 km long.", ["/docs/rivers.md"]

    job, fact, miss, _, _ = setup(settings, answer)
    candidates = job.select("p")
    assert asked == [("p", QUESTION)]  # open misses are not answered or trained
    assert [c.fact.id for c in candidates if c.fact] == [fact.id]
    doc = next(c for c in candidates if c.miss_id)
    assert doc.miss_id == miss.id and doc.decision == "train"
    assert doc.spec.question == QUESTION and doc.spec.text == "The Zelvan river is 300 km long."
    row = job._card_row(Example(question=QUESTION, answer=doc.spec.text, phrasing="user", fact_id=miss.id),
                        candidates)
    assert row.kind == "document_qa" and row.provenance.kind == "document"
    assert row.provenance.document == "/docs/rivers.md" and QUESTION in row.provenance.note


def test_a_miss_the_documents_no_longer_answer_is_not_trained(settings):
    job, _, miss, _, _ = setup(settings, lambda pool, question: None)
    doc = next(c for c in job.select("p") if c.miss_id)
    assert doc.decision == "unverifiable" and "no answer" in doc.reason


def test_a_miss_trained_into_a_registered_adapter_is_not_selected_again(settings, tmp_path):
    job, _, miss, _, registry = setup(settings, lambda pool, q: ("The Zelvan river is 300 km long.", ["/d"]))
    staged = tmp_path / "adapter"
    staged.mkdir()
    (staged / "adapter_config.json").write_text("{}")
    registry.publish("p", staged, Manifest(base_model="m", miss_ids=[miss.id]))
    assert [c for c in job.select("p") if c.miss_id] == []


def test_documents_can_be_left_out_by_setting(settings):
    off = settings.model_copy(update={"consolidate_documents": False})
    job, *_ = setup(off, lambda pool, q: ("x is y.", ["/d"]))
    assert all(c.miss_id is None for c in job.select("p"))
