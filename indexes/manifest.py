"""The source manifest: per Chroma store and pool, which files are indexed, at which content hash, as which chunks.

A SQLite file under the data folder (WAL, one transaction per write). The ingester writes a file's row only after
its chunks are in Chroma, so the manifest never claims more than Chroma holds. Schema changes are named, append-only
migrations recorded in the `migrations` table. This module does not talk to Chroma.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from indexes.records import SourceInfo

MIGRATIONS: list[tuple[str, str]] = [
    ("m001_sources", """
        CREATE TABLE sources (
            store TEXT NOT NULL,          -- which Chroma (embedded path or server URL)
            pool TEXT NOT NULL,
            path TEXT NOT NULL,           -- the file's real absolute path
            content_hash TEXT NOT NULL,   -- sha256 of the file's bytes
            pipeline TEXT NOT NULL,       -- embedder + chunker identity: a change re-ingests the file
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            chunk_ids TEXT NOT NULL,      -- JSON list, in chunk order
            ingested_at TEXT NOT NULL,
            PRIMARY KEY (store, pool, path)
        );
    """),
]


@dataclass(frozen=True)
class SourceRow:
    pool: str
    path: str
    content_hash: str
    pipeline: str
    kind: str
    title: str
    chunk_ids: tuple[str, ...]
    ingested_at: str

    def info(self) -> SourceInfo:
        return SourceInfo(path=self.path, pool=self.pool, kind=self.kind, title=self.title,
                          content_hash=self.content_hash, chunks=len(self.chunk_ids), ingested_at=self.ingested_at)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Manifest:
    """Rows of one Chroma store (`store` from `indexes.client.store_id`)."""

    def __init__(self, db_path: Path, store: str):
        self.db_path = Path(db_path)
        self.store = store
        self._lock = threading.Lock()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection: committed on success, rolled back on any error."""
        with self._lock, closing(sqlite3.connect(self.db_path, timeout=30)) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            with con:
                yield con

    def _migrate(self) -> None:
        with self._tx() as con:
            con.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in con.execute("SELECT name FROM migrations")}
            for name, sql in MIGRATIONS:
                if name not in done:
                    for statement in filter(str.strip, sql.split(";")):
                        con.execute(statement)
                    con.execute("INSERT INTO migrations VALUES (?, ?)", (name, now_iso()))

    def applied_migrations(self) -> list[str]:
        with self._tx() as con:
            return [r[0] for r in con.execute("SELECT name FROM migrations ORDER BY name")]

    def get(self, pool: str, path: str) -> SourceRow | None:
        rows = self._select("pool = ? AND path = ?", (pool, path))
        return rows[0] if rows else None

    def rows(self, pool: str, under: Iterable[str] | None = None) -> list[SourceRow]:
        """All rows of a pool, or those at or below the given paths (files or folders)."""
        rows = self._select("pool = ?", (pool,))
        if under is None:
            return rows
        roots = [r.rstrip("/") for r in under]
        return [r for r in rows if any(r.path == root or r.path.startswith(root + "/") for root in roots)]

    def pools(self) -> list[str]:
        with self._tx() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT pool FROM sources WHERE store = ? ORDER BY pool",
                                              (self.store,))]

    def put(self, rows: Iterable[SourceRow]) -> None:
        with self._tx() as con:
            con.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.store, r.pool, r.path, r.content_hash, r.pipeline, r.kind, r.title,
                  json.dumps(list(r.chunk_ids)), r.ingested_at) for r in rows])

    def delete(self, pool: str, paths: Iterable[str]) -> None:
        with self._tx() as con:
            con.executemany("DELETE FROM sources WHERE store = ? AND pool = ? AND path = ?",
                            [(self.store, pool, p) for p in paths])

    def _select(self, where: str, args: tuple) -> list[SourceRow]:
        with self._tx() as con:
            cur = con.execute(
                "SELECT pool, path, content_hash, pipeline, kind, title, chunk_ids, ingested_at FROM sources "
                f"WHERE store = ? AND {where} ORDER BY path", (self.store, *args))
            return [SourceRow(p, path, h, pl, k, t, tuple(json.loads(ids)), at)
                    for p, path, h, pl, k, t, ids, at in cur]
