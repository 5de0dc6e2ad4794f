"""`SqliteLog`: the memory log in agentmem.db (SQLite, WAL), safe to share between threads and processes.

One table per record type, one column per field (nested values as JSON); rows are written and read only
through the records' own serializer. Each public write is one transaction (see `agentmem.db`); partial unique
indexes back up the one-active-fact-per-slot and one-active-run-per-pool rules. Schema changes live in
`agentmem.migrations`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from agentmem.db import Database
from agentmem.memory.log import MemoryLog
from agentmem.memory.records import (
    ACTIVE_FACT_STATUSES,
    ACTIVE_RUN_STATUSES,
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

_TABLES: dict[type[Record], str] = {
    Fact: "facts",
    Miss: "misses",
    Feedback: "feedback",
    ConsolidationRun: "runs",
}
# Fields stored as JSON text; everything else maps to a plain column.
_JSON_FIELDS = frozenset({"provenance", "resolved_by", "config", "metrics", "gate", "fact_ids"})


def _to_row(record: Record) -> dict[str, Any]:
    row = record.model_dump(mode="json")
    for name in _JSON_FIELDS & row.keys():
        if row[name] is not None:
            row[name] = json.dumps(row[name], sort_keys=True)
    if isinstance(record, Fact):
        row["slot"] = record.slot  # derived, only for the unique index and lookups
    return row


def _from_row(kind: type[R], row: sqlite3.Row) -> R:
    data = {name: row[name] for name in kind.model_fields}
    for name in _JSON_FIELDS & data.keys():
        if data[name] is not None:
            data[name] = json.loads(data[name])
    return kind.model_validate(data)


def _marks(values: Any) -> str:
    return ", ".join("?" for _ in values)


class SqliteLog(MemoryLog):
    def __init__(self, path: Path | str, *, busy_timeout_s: float | None = None):
        self.db = Database(path, busy_timeout_s=busy_timeout_s)
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        return self.db.path

    def close(self) -> None:
        self.db.close()

    # BEGIN IMMEDIATE takes the write lock before the checks in MemoryLog run, so check-then-write is atomic
    # across threads and processes; the unique indexes are a backstop that should never fire.
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.db.transaction() as conn:
            outer, self._conn = self._conn, conn
            try:
                yield
            finally:
                self._conn = outer

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self.db.read() as conn:
            outer, self._conn = self._conn, conn
            try:
                yield
            finally:
                self._conn = outer

    def _q(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        assert self._conn is not None, "storage primitives run inside _transaction/_reading"
        return self._conn.execute(sql, params).fetchall()

    def _get(self, kind: type[R], record_id: str) -> R | None:
        rows = self._q(f"SELECT * FROM {_TABLES[kind]} WHERE id = ?", (record_id,))
        return _from_row(kind, rows[0]) if rows else None

    def _put(self, record: Record) -> None:
        row = _to_row(record)
        cols = list(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
        self._q(
            f"INSERT INTO {_TABLES[type(record)]} ({', '.join(cols)}) VALUES ({_marks(cols)}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}",
            [row[c] for c in cols],
        )

    def _delete(self, kind: type[Record], record_id: str) -> None:
        self._q(f"DELETE FROM {_TABLES[kind]} WHERE id = ?", (record_id,))

    def _select(self, kind: type[R], where: str, params: list[Any], order: str = "seq") -> list[R]:
        rows = self._q(f"SELECT * FROM {_TABLES[kind]} WHERE {where} ORDER BY {order}", params)
        return [_from_row(kind, r) for r in rows]

    def _facts(self, pool: str, statuses: frozenset[FactStatus] | None, search: str | None) -> list[Fact]:
        where, params = ["pool = ?"], [pool]
        if statuses is not None:
            where.append(f"status IN ({_marks(statuses)})")
            params += sorted(s.value for s in statuses)
        if search:
            where.append("instr(casefold(text), ?) > 0")
            params.append(search)
        return self._select(Fact, " AND ".join(where), params)

    def _slot_holder(self, pool: str, slot: str, exclude: str) -> Fact | None:
        active = sorted(s.value for s in ACTIVE_FACT_STATUSES)
        found = self._select(
            Fact,
            f"pool = ? AND slot = ? AND id != ? AND status IN ({_marks(active)})",
            [pool, slot, exclude, *active],
        )
        return found[0] if found else None

    def _misses(self, pool: str, status: MissStatus | None) -> list[Miss]:
        if status is None:
            return self._select(Miss, "pool = ?", [pool])
        return self._select(Miss, "pool = ? AND status = ?", [pool, status.value])

    def _feedback(self, pool: str, rating: Rating | None) -> list[Feedback]:
        if rating is None:
            return self._select(Feedback, "pool = ?", [pool])
        return self._select(Feedback, "pool = ? AND rating = ?", [pool, rating.value])

    def _runs(self, pool: str, status: RunStatus | None, limit: int | None) -> list[ConsolidationRun]:
        where, params = "pool = ?", [pool]
        if status is not None:
            where, params = where + " AND status = ?", params + [status.value]
        order = "seq DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return self._select(ConsolidationRun, where, params, order)

    def _active_run(self, pool: str) -> ConsolidationRun | None:
        active = sorted(s.value for s in ACTIVE_RUN_STATUSES)
        found = self._select(ConsolidationRun, f"pool = ? AND status IN ({_marks(active)})", [pool, *active])
        return found[0] if found else None

    def _pools(self) -> list[str]:
        union = " UNION ".join(f"SELECT pool FROM {table}" for table in _TABLES.values())
        return [row[0] for row in self._q(f"SELECT pool FROM ({union}) ORDER BY pool")]
