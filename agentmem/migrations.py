"""Named, append-only schema migrations for agentmem.db (the memory log and the adapter registry).

Each migration is a function `mNNN_name(conn)` registered in order with `@migration`; `migrate()` applies
those not yet recorded in the `_migrations` table inside the caller's transaction, so a crash mid-way leaves
the schema as it was. Never edit or reorder a migration that has shipped: add a new one. This module does not
open connections (see `agentmem.db`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def _run(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the caller's transaction first, so statements run one by one.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations on `conn`, already inside a write transaction; returns their names."""
    if not conn.in_transaction:
        raise RuntimeError("migrate() must run inside a transaction (BEGIN IMMEDIATE)")
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        fn(conn)
        now = datetime.now(UTC).isoformat()
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (fn.__name__, now))
        applied.append(fn.__name__)
    return applied


# Statuses are not CHECK-constrained: SQLite cannot alter a CHECK without rebuilding the table, and the
# pydantic records already validate every value that is written.
@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE facts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            pool TEXT NOT NULL,
            text TEXT NOT NULL,
            subject TEXT,
            key TEXT,
            slot TEXT,
            provenance TEXT NOT NULL,
            status TEXT NOT NULL,
            superseded_by TEXT REFERENCES facts(id) DEFERRABLE INITIALLY DEFERRED,
            adapter_version TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX facts_pool_status ON facts(pool, status);
        CREATE UNIQUE INDEX facts_one_active_per_slot ON facts(pool, slot)
            WHERE slot IS NOT NULL AND status IN ('pending', 'consolidated', 'known');

        CREATE TABLE misses (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            pool TEXT NOT NULL,
            question TEXT NOT NULL,
            best_score REAL,
            answer TEXT,
            thread_id TEXT,
            status TEXT NOT NULL,
            resolved_by TEXT,
            created_at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE INDEX misses_pool_status ON misses(pool, status);

        CREATE TABLE feedback (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            pool TEXT NOT NULL,
            thread_id TEXT,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            rating TEXT NOT NULL,
            correction TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX feedback_pool ON feedback(pool, rating);

        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            pool TEXT NOT NULL,
            status TEXT NOT NULL,
            stage TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            config TEXT NOT NULL,
            metrics TEXT NOT NULL,
            gate TEXT NOT NULL,
            fact_ids TEXT NOT NULL,
            adapter_version TEXT,
            error TEXT,
            log_path TEXT
        );
        CREATE INDEX runs_pool ON runs(pool, status);
        CREATE UNIQUE INDEX runs_one_active_per_pool ON runs(pool) WHERE status IN ('queued', 'running')
        """,
    )


@migration
def m002_adapter_registry(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE adapter_versions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            pool TEXT NOT NULL,
            version TEXT NOT NULL,
            number INTEGER NOT NULL,
            serving_name TEXT NOT NULL UNIQUE,
            base_model TEXT NOT NULL,
            parent_version TEXT,
            facts_hash TEXT,
            fact_count INTEGER NOT NULL,
            run_id TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (pool, version),
            UNIQUE (pool, number)
        );
        CREATE TABLE adapter_activations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            pool TEXT NOT NULL,
            version TEXT,
            activated_at TEXT NOT NULL,
            undone_at TEXT,
            FOREIGN KEY (pool, version) REFERENCES adapter_versions(pool, version)
        );
        CREATE INDEX adapter_activations_pool ON adapter_activations(pool, undone_at)
        """,
    )
