"""What only the SQLite memory log must do: migrations, persistence, concurrency, crash safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentmem import migrations
from agentmem.db import Database
from agentmem.errors import Busy
from agentmem.memory import (
    ConsolidationRun,
    Fact,
    FactStatus,
    Feedback,
    Miss,
    Resolution,
    SqliteLog,
    open_memory_log,
)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_open_memory_log_uses_the_settings_db_with_wal_and_foreign_keys(settings) -> None:
    with open_memory_log(settings) as log:
        assert log.path == settings.db_path and settings.db_path.is_file()
        assert log.db.busy_timeout_s == settings.db_busy_timeout_s
        with log.db.read() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(settings.db_busy_timeout_s * 1000)


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    first = SqliteLog(path)
    names = [fn.__name__ for fn in migrations.MIGRATIONS]
    assert names[:2] == ["m001_initial", "m002_adapter_registry"]
    assert first.db.applied_migrations == names
    first.close()
    again = SqliteLog(path)
    assert again.db.applied_migrations == []
    with again.db.read() as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")] == names
    again.close()
    assert {"facts", "misses", "feedback", "runs", "adapter_versions", "adapter_activations"} <= tables(path)


def test_a_failing_migration_leaves_the_schema_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.db"
    SqliteLog(path).close()

    def m999_broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_broken])
    with pytest.raises(RuntimeError, match="boom"):
        Database(path)
    assert "half_done" not in tables(path)
    with sqlite3.connect(path) as conn:
        assert "m999_broken" not in {r[0] for r in conn.execute("SELECT name FROM _migrations")}


def test_everything_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with SqliteLog(path) as log:
        f = log.add_fact(Fact(pool="p", text="Quenta has two moons.", subject="Quenta", key="moons"))
        m = log.resolve_miss(
            "p", log.add_miss(Miss(pool="p", question="moons?")).id, Resolution(kind="fact", ref=f.id)
        )
        fb = log.add_feedback(Feedback(pool="p", question="q", answer="a", rating="down", correction="c"))
        run = log.update_run(
            "p", log.claim_run("p", config={"r": 8}).id, stage="train", metrics={"loss": 0.25}
        )
    with SqliteLog(path) as log:
        assert log.list_facts("p") == [f]
        assert log.list_misses("p") == [m]
        assert log.list_feedback("p") == [fb]
        assert log.list_runs("p") == [run] and log.active_run("p") == run


def test_eight_threads_writing_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    shared = SqliteLog(path, busy_timeout_s=60)
    own = [
        SqliteLog(path, busy_timeout_s=60) for _ in range(8)
    ]  # separate connections contend on the file lock
    errors: list[BaseException] = []
    per_thread = 40

    def work(i: int) -> None:
        try:
            for j in range(per_thread):
                log = shared if j % 2 else own[i]
                f = log.add_fact(
                    Fact(pool=f"pool{i % 2}", text=f"fact {i}-{j}", subject=f"s{i}", key=f"k{j}")
                )
                log.mark_consolidated(f.pool, [f.id], "v1")
                log.add_miss(Miss(pool="misses", question=f"q {i}-{j}"))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    facts = shared.list_facts("pool0") + shared.list_facts("pool1")
    assert len(facts) == 8 * per_thread and len({f.text for f in facts}) == 8 * per_thread
    assert {f.status for f in facts} == {FactStatus.CONSOLIDATED}
    assert len(shared.list_misses("misses")) == 8 * per_thread
    for log in [shared, *own]:
        log.close()


def test_concurrent_claims_from_separate_connections_admit_exactly_one(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    logs = [SqliteLog(path, busy_timeout_s=60) for _ in range(8)]
    barrier = threading.Barrier(8)
    won: list[ConsolidationRun] = []
    busy: list[Busy] = []

    def claim(log: SqliteLog) -> None:
        barrier.wait()
        try:
            won.append(log.claim_run("p"))
        except Busy as exc:
            busy.append(exc)

    threads = [threading.Thread(target=claim, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(busy) == 7
    assert logs[0].list_runs("p") == won
    for log in logs:
        log.close()


def test_a_write_that_raises_midway_leaves_no_partial_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = SqliteLog(tmp_path / "a.db")
    old = log.add_fact(Fact(pool="p", text="Quenta has two moons.", subject="Quenta", key="moons"))
    a = log.add_fact(Fact(pool="p", text="fact a"))
    b = log.add_fact(Fact(pool="p", text="fact b"))
    real_put = SqliteLog._put
    calls = {"n": 0}

    def put_then_fail(self: SqliteLog, record) -> None:  # the first write lands, then the "crash"
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real_put(self, record)

    monkeypatch.setattr(SqliteLog, "_put", put_then_fail)
    with pytest.raises(OSError):
        log.supersede("p", old.id, Fact(pool="p", text="Quenta has three moons."))
    calls["n"] = 0
    with pytest.raises(OSError):
        log.mark_consolidated("p", [a.id, b.id], "v1")
    monkeypatch.setattr(SqliteLog, "_put", real_put)
    assert log.list_facts("p") == [old, a, b]
    log.close()


def test_a_process_killed_inside_a_transaction_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    SqliteLog(path).close()
    script = f"""
import os
from agentmem.memory import Fact, SqliteLog
log = SqliteLog({str(path)!r})
with log._transaction():
    log._put(Fact(pool="p", text="never committed"))
    os._exit(9)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 9, proc.stderr
    with SqliteLog(path) as log:
        assert log.list_facts("p") == []
        log.add_fact(Fact(pool="p", text="the file still works"))
        assert len(log.list_facts("p")) == 1
