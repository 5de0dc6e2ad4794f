"""Conformance suite: every MemoryLog backend must pass these, unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from agentmem.errors import Busy, Conflict, NotFound
from agentmem.memory import (
    ConsolidationRun,
    Fact,
    FactConflict,
    FactStatus,
    Feedback,
    InMemoryLog,
    MemoryLog,
    Miss,
    MissStatus,
    Provenance,
    ProvenanceKind,
    Rating,
    Resolution,
    ResolutionKind,
    RunStatus,
    SqliteLog,
)


@pytest.fixture(params=["memory", "sqlite"])
def log(request: pytest.FixtureRequest, settings) -> Iterator[MemoryLog]:
    store: MemoryLog = InMemoryLog() if request.param == "memory" else SqliteLog(settings.db_path)
    yield store
    store.close()


def fact(text: str = "Zorblax is the capital of Quenta.", pool: str = "p", **kw) -> Fact:
    return Fact(pool=pool, text=text, **kw)


# ---- facts -------------------------------------------------------------------------------------------------


def test_fact_round_trips_every_field(log: MemoryLog) -> None:
    f = fact(
        subject="Quenta",
        key="capital",
        provenance=Provenance(kind=ProvenanceKind.DOCUMENT, who="ana", thread_id="t1", document="docs/q.md"),
    )
    assert log.add_fact(f) == f
    assert log.get_fact("p", f.id) == f
    assert log.list_facts("p") == [f]


def test_get_fact_of_another_pool_is_not_found(log: MemoryLog) -> None:
    f = log.add_fact(fact(pool="a"))
    with pytest.raises(NotFound):
        log.get_fact("b", f.id)
    with pytest.raises(NotFound):
        log.get_fact("a", "fact_missing")


def test_list_facts_filters_by_status_and_search_in_insertion_order(log: MemoryLog) -> None:
    a = log.add_fact(fact("Ärger means trouble."))
    b = log.add_fact(fact("The sky on Quenta is green.", status=FactStatus.KNOWN))
    c = log.add_fact(fact("Quenta has two moons.", status=FactStatus.REJECTED))
    assert [x.id for x in log.list_facts("p")] == [a.id, b.id, c.id]
    assert [x.id for x in log.list_facts("p", status="known")] == [b.id]
    assert [x.id for x in log.list_facts("p", status=[FactStatus.PENDING, "rejected"])] == [a.id, c.id]
    assert [x.id for x in log.list_facts("p", search="QUENTA")] == [b.id, c.id]
    assert [x.id for x in log.list_facts("p", search="ärger")] == [a.id]  # casefold, not ASCII-only lower()
    assert log.list_facts("p", search="100%") == []  # no LIKE wildcards
    assert log.list_facts("p", status="known", search="moons") == []


def test_duplicate_id_is_refused(log: MemoryLog) -> None:
    f = log.add_fact(fact())
    with pytest.raises(Conflict):
        log.add_fact(fact("other text", id=f.id))


def test_second_active_fact_on_a_slot_conflicts_and_names_the_first(log: MemoryLog) -> None:
    first = log.add_fact(fact(subject="Quenta", key="capital"))
    with pytest.raises(FactConflict) as info:
        log.add_fact(fact("Quenta's capital is Vell.", subject="  quenta ", key="CAPITAL"))
    assert info.value.existing == first
    assert len(log.list_facts("p")) == 1
    # No key: no slot, no contradiction; another pool or another key is a different slot.
    log.add_fact(fact("More about Quenta.", subject="Quenta"))
    log.add_fact(fact(pool="q", subject="Quenta", key="capital"))
    log.add_fact(fact("Quenta's moon count is 2.", subject="Quenta", key="moons"))
    assert log.find_active_fact("p", "QUENTA", "capital") == first
    assert log.find_active_fact("p", "Quenta", None) is None
    assert log.find_active_fact("other", "Quenta", "capital") is None


def test_inactive_facts_do_not_hold_their_slot(log: MemoryLog) -> None:
    old = log.add_fact(fact(subject="Quenta", key="capital"))
    log.set_fact_status("p", old.id, FactStatus.REJECTED)
    new = log.add_fact(fact("Quenta's capital is Vell.", subject="Quenta", key="capital"))
    assert log.find_active_fact("p", "Quenta", "capital") == new
    with pytest.raises(FactConflict):  # re-activating the rejected one would make two
        log.set_fact_status("p", old.id, FactStatus.PENDING)
    assert log.get_fact("p", old.id).status is FactStatus.REJECTED


def test_update_fact_edits_and_sends_trained_facts_back_to_pending(log: MemoryLog) -> None:
    f = log.add_fact(fact(subject="Quenta", key="capital"))
    log.mark_consolidated("p", [f.id], "v1")
    edited = log.update_fact("p", f.id, text="  Zorblax is the capital of Quenta and its port. ")
    assert edited.text == "Zorblax is the capital of Quenta and its port."
    assert edited.status is FactStatus.PENDING and edited.adapter_version is None
    assert edited.updated_at >= f.updated_at
    assert log.get_fact("p", f.id) == edited
    # Same text: status untouched; "" clears the key, None leaves the subject.
    log.mark_consolidated("p", [f.id], "v2")
    same = log.update_fact("p", f.id, text=edited.text, key="")
    assert same.status is FactStatus.CONSOLIDATED and same.key is None and same.subject == "Quenta"


def test_update_fact_into_an_occupied_slot_conflicts_and_changes_nothing(log: MemoryLog) -> None:
    log.add_fact(fact(subject="Quenta", key="capital"))
    other = log.add_fact(fact("Quenta has two moons.", subject="Quenta", key="moons"))
    with pytest.raises(FactConflict):
        log.update_fact("p", other.id, key="capital")
    assert log.get_fact("p", other.id) == other


def test_status_rules(log: MemoryLog) -> None:
    f = log.add_fact(fact())
    assert log.set_fact_status("p", f.id, "known").status is FactStatus.KNOWN
    with pytest.raises(ValueError):
        log.set_fact_status("p", f.id, FactStatus.CONSOLIDATED)
    with pytest.raises(ValueError):
        log.set_fact_status("p", f.id, "superseded")
    with pytest.raises(ValueError):
        log.set_fact_status("p", f.id, "bogus")
    with pytest.raises(ValueError):
        log.add_fact(fact(status=FactStatus.SUPERSEDED))


def test_supersede_replaces_in_one_step(log: MemoryLog) -> None:
    old = log.add_fact(fact(subject="Quenta", key="capital"))
    new = log.supersede(
        "p", old.id, fact("Vell is the capital of Quenta.", provenance=Provenance(kind="correction"))
    )
    stored_old = log.get_fact("p", old.id)
    assert stored_old.status is FactStatus.SUPERSEDED and stored_old.superseded_by == new.id
    assert (new.subject, new.key) == ("Quenta", "capital")  # inherited: the correction takes the same slot
    assert new.provenance.corrects == old.id and new.provenance.kind is ProvenanceKind.CORRECTION
    assert log.get_fact("p", new.id) == new
    assert log.find_active_fact("p", "Quenta", "capital") == new
    with pytest.raises(Conflict):
        log.supersede("p", old.id, fact("Another capital."))
    with pytest.raises(Conflict):
        log.update_fact("p", old.id, text="rewrite history")
    with pytest.raises(Conflict):
        log.set_fact_status("p", old.id, FactStatus.PENDING)


def test_failed_supersede_leaves_no_trace(log: MemoryLog) -> None:
    old = log.add_fact(fact(subject="Quenta", key="capital"))
    third = log.add_fact(fact("Quenta has two moons.", subject="Quenta", key="moons"))
    with pytest.raises(FactConflict):  # the replacement collides with a third fact: nothing may change
        log.supersede("p", old.id, fact("Quenta has three moons.", subject="Quenta", key="moons"))
    assert log.list_facts("p") == [old, third]
    with pytest.raises(NotFound):
        log.supersede("q", old.id, fact(pool="q"))
    with pytest.raises(ValueError):
        log.supersede("p", old.id, fact(pool="q"))
    assert log.list_facts("p") == [old, third]


def test_mark_consolidated_marks_only_trainable_facts_and_is_all_or_nothing(log: MemoryLog) -> None:
    pending = log.add_fact(fact("a fact"))
    known = log.add_fact(fact("a known fact", status=FactStatus.KNOWN))
    rejected = log.add_fact(fact("a rejected fact", status=FactStatus.REJECTED))
    elsewhere = log.add_fact(fact("another pool's fact", pool="q"))
    with pytest.raises(NotFound):
        log.mark_consolidated("p", [pending.id, elsewhere.id], "v1")
    assert log.get_fact("p", pending.id) == pending
    marked = log.mark_consolidated("p", [pending.id, known.id, rejected.id, pending.id], "v1")
    assert [f.id for f in marked] == [pending.id]
    assert log.get_fact("p", pending.id).status is FactStatus.CONSOLIDATED
    assert log.get_fact("p", pending.id).adapter_version == "v1"
    assert log.get_fact("p", known.id) == known and log.get_fact("p", rejected.id) == rejected
    assert log.mark_consolidated("p", [pending.id], "v2")[0].adapter_version == "v2"


# ---- misses and feedback ----------------------------------------------------------------------------------


def test_misses_are_listed_and_resolved(log: MemoryLog) -> None:
    m1 = log.add_miss(Miss(pool="p", question="What is the capital of Quenta?", best_score=0.12, answer="?"))
    m2 = log.add_miss(Miss(pool="p", question="How many moons?", thread_id="t"))
    log.add_miss(Miss(pool="q", question="elsewhere"))
    assert log.get_miss("p", m1.id) == m1
    assert log.list_misses("p") == [m1, m2]
    f = log.add_fact(fact())
    by = Resolution(kind=ResolutionKind.FACT, ref=f.id)
    resolved = log.resolve_miss("p", m1.id, by)
    assert resolved.status is MissStatus.RESOLVED and resolved.resolved_by == by and resolved.resolved_at
    assert log.list_misses("p", status="open") == [m2]
    assert log.list_misses("p", status=MissStatus.RESOLVED) == [resolved]
    assert log.resolve_miss("p", m1.id, by) == resolved  # same resolution again: no-op
    with pytest.raises(Conflict):
        log.resolve_miss("p", m1.id, Resolution(kind="document", ref="docs/q.md"))
    doc = log.resolve_miss("p", m2.id, Resolution(kind="document", ref="docs/q.md"))
    assert doc.resolved_by.kind is ResolutionKind.DOCUMENT


def test_a_miss_cannot_be_resolved_by_a_missing_or_foreign_fact(log: MemoryLog) -> None:
    m = log.add_miss(Miss(pool="p", question="q?"))
    foreign = log.add_fact(fact(pool="q"))
    for ref in ("fact_nope", foreign.id):
        with pytest.raises(NotFound):
            log.resolve_miss("p", m.id, Resolution(kind="fact", ref=ref))
    assert log.get_miss("p", m.id) == m
    with pytest.raises(NotFound):
        log.resolve_miss("q", m.id, Resolution(kind="document", ref="x"))


def test_feedback_is_listed_by_pool_and_rating(log: MemoryLog) -> None:
    up = log.add_feedback(Feedback(pool="p", question="q1", answer="a1", rating="up", thread_id="t"))
    down = log.add_feedback(
        Feedback(pool="p", question="q2", answer="a2", rating=Rating.DOWN, correction=" 26 ")
    )
    log.add_feedback(Feedback(pool="q", question="q3", answer="a3", rating="down"))
    assert down.correction == "26"
    assert log.list_feedback("p") == [up, down]
    assert log.list_feedback("p", rating="down") == [down]
    assert log.list_feedback("nobody") == []


# ---- runs -------------------------------------------------------------------------------------------------


def test_claim_run_allows_one_active_run_per_pool(log: MemoryLog) -> None:
    run = log.claim_run("p", config={"epochs": 3})
    assert run.status is RunStatus.RUNNING and run.started_at is not None and run.config == {"epochs": 3}
    with pytest.raises(Busy):
        log.claim_run("p")
    with pytest.raises(Busy):
        log.create_run(ConsolidationRun(pool="p"))  # queued counts as active too
    other = log.claim_run("q")  # pools are independent
    assert log.active_run("p") == run and log.active_run("q") == other
    # A finished run may be recorded while one is active (e.g. imported history).
    log.create_run(ConsolidationRun(pool="p", status="failed", error="old"))
    log.update_run("p", run.id, status="succeeded", adapter_version="v1")
    assert log.active_run("p") is None
    assert log.claim_run("p").id != run.id


def test_update_run_records_progress_and_refuses_reopening(log: MemoryLog) -> None:
    run = log.create_run(ConsolidationRun(pool="p"))
    assert run.status is RunStatus.QUEUED and run.started_at is None
    running = log.update_run("p", run.id, status="running", stage="train")
    assert running.started_at is not None and running.finished_at is None and running.stage == "train"
    done = log.update_run(
        "p",
        run.id,
        status=RunStatus.REJECTED,
        metrics={"recall": 0.5},
        gate={"promote": False, "why": "regressed"},
    )
    assert done.finished_at is not None and done.metrics == {"recall": 0.5} and not done.active
    assert log.get_run("p", run.id) == done
    with pytest.raises(Conflict):
        log.update_run("p", run.id, status="running")
    assert (
        log.update_run("p", run.id, log_path="runs/x.log").log_path == "runs/x.log"
    )  # details may still change
    with pytest.raises(ValueError):
        log.update_run("p", run.id, pool="q")
    with pytest.raises(ValueError):
        log.update_run("p", run.id, stage="Not A Stage")
    with pytest.raises(NotFound):
        log.update_run("q", run.id, stage="train")


def test_list_runs_newest_first_with_status_and_limit(log: MemoryLog) -> None:
    ids = []
    for i in range(4):
        run = log.claim_run("p", config={"i": i})
        log.update_run("p", run.id, status="failed" if i % 2 else "succeeded")
        ids.append(run.id)
    assert [r.id for r in log.list_runs("p")] == ids[::-1]
    assert [r.id for r in log.list_runs("p", limit=2)] == ids[:1:-1]
    assert [r.id for r in log.list_runs("p", status="failed")] == [ids[3], ids[1]]
    assert log.list_runs("q") == []


def test_returned_records_cannot_change_the_store(log: MemoryLog) -> None:
    run = log.claim_run("p", config={"lr": 1e-4})
    run.config["lr"] = 1.0  # frozen models still hold mutable dicts
    assert log.get_run("p", run.id).config == {"lr": 1e-4}
    with pytest.raises(ValidationError):
        run.status = RunStatus.FAILED  # type: ignore[misc]


# ---- pools ------------------------------------------------------------------------------------------------


def test_pools_are_isolated_everywhere(log: MemoryLog) -> None:
    for pool in ("alpha", "beta"):
        f = log.add_fact(fact(f"{pool} fact", pool=pool, subject="s", key="k"))
        log.add_miss(Miss(pool=pool, question=f"{pool}?"))
        log.add_feedback(Feedback(pool=pool, question="q", answer="a", rating="up"))
        log.claim_run(pool)
        log.mark_consolidated(pool, [f.id], f"{pool}-v1")
    log.add_miss(Miss(pool="gamma", question="only a miss"))
    for pool in ("alpha", "beta"):
        assert {f.pool for f in log.list_facts(pool)} == {pool}
        assert {m.pool for m in log.list_misses(pool)} == {pool}
        assert {x.pool for x in log.list_feedback(pool)} == {pool}
        assert {r.pool for r in log.list_runs(pool)} == {pool}
        assert log.find_active_fact(pool, "s", "k").pool == pool
    assert log.list_pools() == ["alpha", "beta", "gamma"]


def test_invalid_pool_names_are_rejected_by_the_records() -> None:
    for bad in ("", "has space", "../up", ".hidden"):
        with pytest.raises(ValueError):
            Fact(pool=bad, text="x")


def test_delete_fact_removes_it_from_its_pool_only(log: MemoryLog) -> None:
    keep = log.add_fact(Fact(pool="a", text="Keep me."))
    gone = log.add_fact(Fact(pool="a", text="Delete me.", subject="x", key="is"))
    with pytest.raises(NotFound):
        log.delete_fact("b", gone.id)
    assert log.delete_fact("a", gone.id).id == gone.id
    assert [f.id for f in log.list_facts("a")] == [keep.id]
    with pytest.raises(NotFound):
        log.get_fact("a", gone.id)
    log.add_fact(Fact(pool="a", text="The slot is free again.", subject="x", key="is"))
