"""The memory log interface: what the agent was taught, missed and told, and the consolidation runs.

`MemoryLog` holds every rule once (pool isolation, one active fact per subject/key, atomic supersede, one
active run per pool) on top of a few storage primitives that each backend implements: `InMemoryLog` for tests
and `SqliteLog` for real use. Every method takes the pool and never returns another pool's rows. It does not
decide what to train (see consolidation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Self, TypeVar

from agentmem.errors import Busy, Conflict, NotFound
from agentmem.memory.records import (
    ConsolidationRun,
    Fact,
    FactConflict,
    FactStatus,
    Feedback,
    Miss,
    MissStatus,
    Rating,
    Record,
    Resolution,
    ResolutionKind,
    RunStatus,
    slot_of,
    utcnow,
)

R = TypeVar("R", bound=Record)
_NOUN = {Fact: "fact", Miss: "miss", Feedback: "feedback", ConsolidationRun: "run"}


def _statuses(status: FactStatus | str | Iterable[FactStatus | str] | None) -> frozenset[FactStatus] | None:
    if status is None:
        return None
    if isinstance(status, str):
        return frozenset({FactStatus(status)})
    return frozenset(FactStatus(s) for s in status)


class MemoryLog(ABC):
    """The store interface. Subclasses implement the `_`-prefixed primitives; the public methods are final."""

    # ---- storage primitives -------------------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """All primitives called inside happen together or not at all; nested calls join the outer one."""

    def _reading(self) -> AbstractContextManager[None]:
        """A consistent read; backends whose writers lock out readers override this with something lighter."""
        return self._transaction()

    @abstractmethod
    def _get(self, kind: type[R], record_id: str) -> R | None:
        """The record with this id, in any pool."""

    @abstractmethod
    def _put(self, record: Record) -> None:
        """Insert or replace by id."""

    @abstractmethod
    def _delete(self, kind: type[Record], record_id: str) -> None:
        """Remove the record with this id (absent: nothing happens)."""

    @abstractmethod
    def _facts(self, pool: str, statuses: frozenset[FactStatus] | None, search: str | None) -> list[Fact]:
        """Oldest first; `search` is a casefolded substring of the text."""

    @abstractmethod
    def _slot_holder(self, pool: str, slot: str, exclude: str) -> Fact | None:
        """The active fact in `slot`, other than the one with id `exclude`."""

    @abstractmethod
    def _misses(self, pool: str, status: MissStatus | None) -> list[Miss]: ...

    @abstractmethod
    def _feedback(self, pool: str, rating: Rating | None) -> list[Feedback]: ...

    @abstractmethod
    def _runs(self, pool: str, status: RunStatus | None, limit: int | None) -> list[ConsolidationRun]:
        """Newest first."""

    @abstractmethod
    def _active_run(self, pool: str) -> ConsolidationRun | None: ...

    @abstractmethod
    def _pools(self) -> list[str]: ...

    def close(self) -> None:  # noqa: B027 - optional: only stores holding resources override it
        """Release resources; the store is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- helpers -------------------------------------------------------------------------------------------
    def _require(self, kind: type[R], pool: str, record_id: str) -> R:
        record = self._get(kind, record_id)
        if record is None or record.pool != pool:  # another pool's id is as good as missing
            raise NotFound(
                f"no {_NOUN[kind]} {record_id} in pool {pool}", f"list them: agentmem {_NOUN[kind]}s"
            )
        return record

    def _insert(self, record: Record) -> None:
        if self._get(type(record), record.id) is not None:
            raise Conflict(f"a {_NOUN[type(record)]} with id {record.id} already exists", "leave id unset")
        self._put(record)

    def _check_slot(self, fact: Fact, *, exclude: str | None = None) -> None:
        if fact.active and fact.slot is not None:
            holder = self._slot_holder(fact.pool, fact.slot, exclude or fact.id)
            if holder is not None:
                raise FactConflict(holder)

    # ---- facts ---------------------------------------------------------------------------------------------
    def add_fact(self, fact: Fact) -> Fact:
        """Store a new fact. Raises FactConflict if an active fact has the same subject/key."""
        if fact.status is FactStatus.SUPERSEDED:
            raise ValueError("a new fact cannot be superseded already; use supersede()")
        with self._transaction():
            self._check_slot(fact)
            self._insert(fact)
        return fact

    def delete_fact(self, pool: str, fact_id: str) -> Fact:
        """Remove a fact for good and return it. Facts it superseded keep pointing at its id (history)."""
        with self._transaction():
            fact = self._require(Fact, pool, fact_id)
            self._delete(Fact, fact_id)
        return fact

    def get_fact(self, pool: str, fact_id: str) -> Fact:
        with self._reading():
            return self._require(Fact, pool, fact_id)

    def list_facts(
        self,
        pool: str,
        status: FactStatus | str | Iterable[FactStatus | str] | None = None,
        search: str | None = None,
    ) -> list[Fact]:
        """Facts of `pool`, oldest first, optionally of some statuses and containing `search` (any case)."""
        with self._reading():
            return self._facts(pool, _statuses(status), search.casefold() if search else None)

    def find_active_fact(self, pool: str, subject: str | None, key: str | None) -> Fact | None:
        """The active fact about subject/key, if any: the one a new fact on the same slot contradicts."""
        slot = slot_of(subject, key)
        if slot is None:
            return None
        with self._reading():
            return self._slot_holder(pool, slot, exclude="")

    def update_fact(
        self,
        pool: str,
        fact_id: str,
        *,
        text: str | None = None,
        subject: str | None = None,
        key: str | None = None,
    ) -> Fact:
        """Edit a fact (None: unchanged, "": clear subject/key); trained or known facts return to pending."""
        with self._transaction():
            fact = self._require(Fact, pool, fact_id).edited(text=text, subject=subject, key=key)
            self._check_slot(fact)
            self._put(fact)
        return fact

    def set_fact_status(self, pool: str, fact_id: str, status: FactStatus | str) -> Fact:
        """Make a fact pending, rejected or known."""
        with self._transaction():
            fact = self._require(Fact, pool, fact_id).with_status(status)
            self._check_slot(fact)
            self._put(fact)
        return fact

    def supersede(self, pool: str, old_id: str, new_fact: Fact) -> Fact:
        """Replace a fact in one transaction: the old one becomes superseded and points to the new one.

        The new fact inherits the old subject/key when it gives neither, and records `corrects=old_id`."""
        if new_fact.pool != pool:
            raise ValueError(f"new fact is for pool {new_fact.pool}, not {pool}")
        if new_fact.status is FactStatus.SUPERSEDED:
            raise ValueError("the replacing fact cannot be superseded itself")
        with self._transaction():
            old = self._require(Fact, pool, old_id)
            if old.status is FactStatus.SUPERSEDED:
                raise Conflict(
                    f"fact {old_id} was already superseded by {old.superseded_by}", "supersede that one"
                )
            changes: dict[str, Any] = {}
            if new_fact.subject is None and new_fact.key is None:
                changes.update(subject=old.subject, key=old.key)
            if new_fact.provenance.corrects is None:
                changes["provenance"] = new_fact.provenance.evolve(corrects=old_id)
            new = new_fact.evolve(**changes) if changes else new_fact
            now = utcnow()
            self._put(old.evolve(status=FactStatus.SUPERSEDED, superseded_by=new.id, updated_at=now))
            self._check_slot(new, exclude=old.id)
            self._insert(new)
        return new

    def mark_consolidated(self, pool: str, fact_ids: Iterable[str], adapter_version: str) -> list[Fact]:
        """Record that `adapter_version` holds these facts. Facts rejected, superseded or found known while
        training ran keep their status; returns the facts actually marked. An unknown id changes nothing."""
        marked = []
        with self._transaction():
            facts = [self._require(Fact, pool, fid) for fid in dict.fromkeys(fact_ids)]
            for fact in facts:
                if fact.status in (FactStatus.PENDING, FactStatus.CONSOLIDATED):
                    fact = fact.evolve(
                        status=FactStatus.CONSOLIDATED, adapter_version=adapter_version, updated_at=utcnow()
                    )
                    self._put(fact)
                    marked.append(fact)
        return marked

    # ---- misses --------------------------------------------------------------------------------------------
    def add_miss(self, miss: Miss) -> Miss:
        with self._transaction():
            self._insert(miss)
        return miss

    def get_miss(self, pool: str, miss_id: str) -> Miss:
        with self._reading():
            return self._require(Miss, pool, miss_id)

    def list_misses(self, pool: str, status: MissStatus | str | None = None) -> list[Miss]:
        """Oldest first."""
        with self._reading():
            return self._misses(pool, MissStatus(status) if status is not None else None)

    def resolve_miss(self, pool: str, miss_id: str, by: Resolution) -> Miss:
        """Close a miss by a fact of the same pool or a document. Resolving again the same way is a no-op."""
        with self._transaction():
            miss = self._require(Miss, pool, miss_id)
            if by.kind is ResolutionKind.FACT:
                self._require(Fact, pool, by.ref)
            resolved = miss.resolved(by)
            if resolved is not miss:
                self._put(resolved)
        return resolved

    # ---- feedback ------------------------------------------------------------------------------------------
    def add_feedback(self, feedback: Feedback) -> Feedback:
        with self._transaction():
            self._insert(feedback)
        return feedback

    def list_feedback(self, pool: str, rating: Rating | str | None = None) -> list[Feedback]:
        """Oldest first."""
        with self._reading():
            return self._feedback(pool, Rating(rating) if rating is not None else None)

    # ---- consolidation runs --------------------------------------------------------------------------------
    def create_run(self, run: ConsolidationRun) -> ConsolidationRun:
        """Record a run. An active (queued/running) run is refused with Busy while the pool has one."""
        with self._transaction():
            if run.active:
                current = self._active_run(run.pool)
                if current is not None:
                    raise Busy(
                        f"consolidation run {current.id} is already {current.status} for pool {run.pool}",
                        "wait for it to finish, or cancel it",
                    )
            self._insert(run)
        return run

    def claim_run(self, pool: str, *, config: dict[str, Any] | None = None) -> ConsolidationRun:
        """Atomically start a run for `pool` (status running), or raise Busy if one is active."""
        return self.create_run(
            ConsolidationRun(pool=pool, status=RunStatus.RUNNING, started_at=utcnow(), config=config or {})
        )

    def get_run(self, pool: str, run_id: str) -> ConsolidationRun:
        with self._reading():
            return self._require(ConsolidationRun, pool, run_id)

    def update_run(self, pool: str, run_id: str, /, **changes: Any) -> ConsolidationRun:
        """Change status/stage/metrics/gate/... of a run; finished runs cannot become active again."""
        with self._transaction():
            run = self._require(ConsolidationRun, pool, run_id).updated(**changes)
            self._put(run)
        return run

    def list_runs(
        self, pool: str, status: RunStatus | str | None = None, limit: int | None = None
    ) -> list[ConsolidationRun]:
        """Newest first."""
        with self._reading():
            return self._runs(pool, RunStatus(status) if status is not None else None, limit)

    def active_run(self, pool: str) -> ConsolidationRun | None:
        with self._reading():
            return self._active_run(pool)

    # ---- pools ---------------------------------------------------------------------------------------------
    def list_pools(self) -> list[str]:
        """Every pool that has a fact, miss, feedback or run, sorted."""
        with self._reading():
            return self._pools()
