"""The SQLite database file (agentmem.db) shared by the memory log and the adapter registry.

Opens one connection in WAL mode with a busy timeout and foreign keys on, applies pending migrations, and
hands it out behind a lock: `transaction()` for writes (BEGIN IMMEDIATE, so writers queue on the busy timeout
instead of failing with "database is locked" on upgrade) and `read()` for consistent reads. It knows no
tables.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentmem import migrations
from agentmem.settings import Settings

DEFAULT_BUSY_TIMEOUT_S: float = Settings.model_fields["db_busy_timeout_s"].default


class Database:
    """One SQLite connection for all threads: SQLite serializes writers anyway and our queries are tiny."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float | None = None, migrate: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = DEFAULT_BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self._lock = threading.RLock()
        # isolation_level=None: no implicit BEGINs; every transaction is explicit below.
        self._conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a crash of the program never loses a commit; a power cut may drop the last few but the
        # file stays consistent.
        self._set_wal()
        self._conn.execute("PRAGMA synchronous = NORMAL")
        # Python's casefold, so SQL search matches the in-memory store for non-ASCII text too.
        self._conn.create_function(
            "casefold", 1, lambda s: s.casefold() if s is not None else None, deterministic=True
        )
        self.applied_migrations: list[str] = []
        if migrate:
            with self.transaction() as conn:
                self.applied_migrations = migrations.migrate(conn)

    def _set_wal(self) -> None:
        # Switching the journal mode needs a moment of exclusive access and does not wait on the busy handler,
        # so several processes opening a fresh file at once retry here.
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; joins the one already open on this connection (so helpers can nest)."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                # A deferred foreign key is checked here, and a failed COMMIT leaves the transaction open.
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot: several SELECTs see the same state."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
