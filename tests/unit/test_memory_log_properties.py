"""Property tests: random fact histories keep the log's invariants, and both backends agree step by step."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agentmem.errors import AgentmemError
from agentmem.memory import Fact, FactStatus, InMemoryLog, Provenance, SqliteLog

POOLS = ["a", "b"]
subjects = st.sampled_from([None, "Quenta", "quenta ", "Vell"])
keys = st.sampled_from([None, "capital", "Capital", "moons"])
new_statuses = st.sampled_from([FactStatus.PENDING, FactStatus.KNOWN, FactStatus.REJECTED])
texts = st.text(alphabet="abc XYZ", min_size=1, max_size=12).filter(str.strip)


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
