"""Property tests: random fact and miss histories keep the log's invariants, and both backends agree step by step
(also on searches with case folding, SQL wildcard characters and non-ASCII text)."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agentmem.errors import AgentmemError
from agentmem.memory import Fact, FactStatus, InMemoryLog, Miss, MissStatus, Provenance, SqliteLog
from agentmem.memory.records import Resolution, ResolutionKind

POOLS = ["a", "b"]
subjects = st.sampled_from([None, "Quenta", "quenta ", "Vell"])
keys = st.sampled_from([None, "capital", "Capital", "moons"])
new_statuses = st.sampled_from([FactStatus.PENDING, FactStatus.KNOWN, FactStatus.REJECTED])
texts = st.text(alphabet="abc XYZßİé😀%_'\x00", min_size=1, max_size=12).filter(str.strip)
SEARCHES = ["a", "x", "ss", "ß", "i̇", "é", "%", "_", "'", "😀", "\x00"]


def comparable(facts: list[Fact]) -> list[dict]:
    # Each store stamps its own updated_at on supersede/edit; everything else must match exactly.
    return [f.model_dump(exclude={"updated_at"}) for f in facts]


class FactHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="memlog-prop-"))
        self.memory = InMemoryLog()
        self.sqlite = SqliteLog(self.dir / "a.db")
        self.ids: list[tuple[str, str]] = []  # (pool, id) of every fact stored
        self.added = Counter()
        self.misses: list[tuple[str, str]] = []  # (pool, id) of every miss stored

    def both(self, method: str, *args, **kwargs):
        """Call both stores; they must succeed together or fail with the same error type."""
        outcomes = []
        for store in (self.memory, self.sqlite):
            try:
                outcomes.append(("ok", getattr(store, method)(*args, **kwargs)))
            except (AgentmemError, ValueError) as exc:
                outcomes.append(("error", type(exc)))
        assert outcomes[0][0] == outcomes[1][0], (method, outcomes)
        if outcomes[0][0] == "error":
            assert outcomes[0][1] is outcomes[1][1]
            return None
        return outcomes[0][1]

    @rule(pool=st.sampled_from(POOLS), text=texts, subject=subjects, key=keys, status=new_statuses)
    def add(self, pool, text, subject, key, status) -> None:
        fact = Fact(pool=pool, text=text, subject=subject, key=key, status=status)
        if self.both("add_fact", fact) is not None:
            self.ids.append((pool, fact.id))
            self.added[pool] += 1

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(0, 10_000), text=texts, subject=subjects, key=keys)
    def supersede(self, i, text, subject, key) -> None:
        pool, old_id = self.ids[i % len(self.ids)]
        new = Fact(pool=pool, text=text, subject=subject, key=key, provenance=Provenance(kind="correction"))
        if self.both("supersede", pool, old_id, new) is not None:
            self.ids.append((pool, new.id))
            self.added[pool] += 1

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(0, 10_000), status=new_statuses)
    def set_status(self, i, status) -> None:
        pool, fact_id = self.ids[i % len(self.ids)]
        self.both("set_fact_status", pool, fact_id, status)

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(0, 10_000), text=texts, key=keys)
    def edit(self, i, text, key) -> None:
        pool, fact_id = self.ids[i % len(self.ids)]
        self.both("update_fact", pool, fact_id, text=text, key=key or "")

    @precondition(lambda self: self.ids)
    @rule(picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=4), pool=st.sampled_from(POOLS))
    def consolidate(self, picks, pool) -> None:
        ids = [self.ids[i % len(self.ids)][1] for i in picks]
        self.both("mark_consolidated", pool, ids, "v1")  # ids of the other pool must make it fail as a whole

    @rule(pool=st.sampled_from(POOLS), question=texts)
    def miss(self, pool, question) -> None:
        miss = Miss(pool=pool, question=question)
        if self.both("add_miss", miss) is not None:
            self.misses.append((pool, miss.id))

    @precondition(lambda self: self.misses)
    @rule(i=st.integers(0, 10_000), j=st.integers(0, 10_000), by_fact=st.booleans(),
          doc=st.sampled_from(["/docs/a.md", "/docs/b é.md"]))
    def resolve(self, i, j, by_fact, doc) -> None:
        pool, miss_id = self.misses[i % len(self.misses)]
        if by_fact and self.ids:  # a fact of the other pool must be refused by both
            by = Resolution(kind=ResolutionKind.FACT, ref=self.ids[j % len(self.ids)][1])
        else:
            by = Resolution(kind=ResolutionKind.DOCUMENT, ref=doc)
        self.both("resolve_miss", pool, miss_id, by)  # resolving again another way must conflict in both

    @invariant()
    def misses_agree(self) -> None:
        for pool in POOLS:
            misses = self.sqlite.list_misses(pool)
            # Each store stamps its own resolved_at; everything else must match exactly.
            assert [m.model_dump(exclude={"resolved_at"}) for m in misses] == [
                m.model_dump(exclude={"resolved_at"}) for m in self.memory.list_misses(pool)]
            assert len(misses) == sum(1 for p, _ in self.misses if p == pool)
            facts = {f.id for f in self.sqlite.list_facts(pool)}
            for m in misses:
                assert (m.status is MissStatus.RESOLVED) == (m.resolved_by is not None) == (m.resolved_at is not None)
                if m.resolved_by is not None and m.resolved_by.kind is ResolutionKind.FACT:
                    assert m.resolved_by.ref in facts  # a fact of the same pool
            for status in MissStatus:
                assert [m.id for m in self.sqlite.list_misses(pool, status)] == [
                    m.id for m in misses if m.status is status]

    @invariant()
    def searches_agree(self) -> None:
        for pool in POOLS:
            for term in SEARCHES:
                assert comparable(self.sqlite.list_facts(pool, search=term)) == comparable(
                    self.memory.list_facts(pool, search=term)), term

    @invariant()
    def stores_agree_and_invariants_hold(self) -> None:
        for pool in POOLS:
            facts = self.sqlite.list_facts(pool)
            assert comparable(facts) == comparable(self.memory.list_facts(pool))
            assert len(facts) == self.added[pool]
            by_id = {f.id: f for f in facts}
            active_slots = Counter(f.slot for f in facts if f.active and f.slot is not None)
            assert all(n == 1 for n in active_slots.values()), active_slots
            for f in facts:
                if f.status is FactStatus.SUPERSEDED:
                    successor = by_id[f.superseded_by]
                    assert successor.provenance.corrects == f.id
                else:
                    assert f.superseded_by is None
                if f.status is FactStatus.CONSOLIDATED:
                    assert f.adapter_version == "v1"
            assert sum(len(self.sqlite.list_facts(pool, status=s)) for s in FactStatus) == len(facts)

    def teardown(self) -> None:
        self.sqlite.close()
        shutil.rmtree(self.dir, ignore_errors=True)


FactHistory.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFactHistory = FactHistory.TestCase
