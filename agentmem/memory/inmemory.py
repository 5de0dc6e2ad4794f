"""`InMemoryLog`: the memory log in Python dicts, for tests and throwaway sessions.

Same rules as every `MemoryLog` (they live in the base class); a transaction is a lock plus a snapshot
restored if the block raises. Nothing is persisted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from agentmem.memory.log import MemoryLog
from agentmem.memory.records import (
    ConsolidationRun,
    Fact,
    FactStatus,
    Feedback,
    Miss,
    MissStatus,
    Rating,
    Record,
    RunStatus,
)

R = TypeVar("R", bound=Record)


class InMemoryLog(MemoryLog):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        # Insertion-ordered, like the seq column of the SQLite tables.
        self._tables: dict[type[Record], dict[str, Record]] = {
            Fact: {},
            Miss: {},
            Feedback: {},
            ConsolidationRun: {},
        }

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                yield
                return
            # Records are frozen, so copying the dicts is a complete snapshot.
            snapshot = {kind: dict(rows) for kind, rows in self._tables.items()}
            self._depth += 1
            try:
                yield
            except BaseException:
                self._tables = snapshot
                raise
            finally:
                self._depth -= 1

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:  # reads change nothing: no snapshot needed
            yield

    def _get(self, kind: type[R], record_id: str) -> R | None:
        record = self._tables[kind].get(record_id)
        # Deep copy: frozen models can still hold mutable dicts (a run's config) that callers might change.
        return record.model_copy(deep=True) if record is not None else None  # type: ignore[return-value]

    def _put(self, record: Record) -> None:
        self._tables[type(record)][record.id] = record.model_copy(deep=True)

    def _delete(self, kind: type[Record], record_id: str) -> None:
        self._tables[kind].pop(record_id, None)

    def _rows(self, kind: type[R], pool: str) -> list[R]:
        return [r.model_copy(deep=True) for r in self._tables[kind].values() if r.pool == pool]  # type: ignore

    def _facts(self, pool: str, statuses: frozenset[FactStatus] | None, search: str | None) -> list[Fact]:
        return [
            f
            for f in self._rows(Fact, pool)
            if (statuses is None or f.status in statuses) and (search is None or search in f.text.casefold())
        ]

    def _slot_holder(self, pool: str, slot: str, exclude: str) -> Fact | None:
        for fact in self._rows(Fact, pool):
            if fact.active and fact.slot == slot and fact.id != exclude:
                return fact
        return None

    def _misses(self, pool: str, status: MissStatus | None) -> list[Miss]:
        return [m for m in self._rows(Miss, pool) if status is None or m.status is status]

    def _feedback(self, pool: str, rating: Rating | None) -> list[Feedback]:
        return [f for f in self._rows(Feedback, pool) if rating is None or f.rating is rating]

    def _runs(self, pool: str, status: RunStatus | None, limit: int | None) -> list[ConsolidationRun]:
        runs = [
            r for r in reversed(self._rows(ConsolidationRun, pool)) if status is None or r.status is status
        ]
        return runs[:limit] if limit is not None else runs

    def _active_run(self, pool: str) -> ConsolidationRun | None:
        return next((r for r in self._rows(ConsolidationRun, pool) if r.active), None)

    def _pools(self) -> list[str]:
        return sorted({r.pool for rows in self._tables.values() for r in rows.values()})  # type: ignore[attr-defined]
