"""The source manifest: migrations, rows per store and pool, and all-or-nothing writes."""

import sqlite3

import pytest

from indexes.manifest import MIGRATIONS, Manifest, SourceRow


def row(path, pool="p", h="h1", ids=("a", "b")):
    return SourceRow(pool, path, h, "pipe", "text", "T", tuple(ids), "2024-01-01T00:00:00+00:00")


def test_migrations_run_once_and_are_recorded(tmp_path):
    db = tmp_path / "sources.db"
    Manifest(db, "s1")
    m = Manifest(db, "s1")  # reopening applies nothing twice
    assert m.applied_migrations() == [name for name, _ in MIGRATIONS]


def test_rows_by_pool_folder_and_store(tmp_path):
    m = Manifest(tmp_path / "sources.db", "s1")
    m.put([row("/d/a.txt"), row("/d/sub/b.txt"), row("/dx/c.txt"), row("/d/a.txt", pool="q")])
    assert [r.path for r in m.rows("p", under=["/d"])] == ["/d/a.txt", "/d/sub/b.txt"]  # not /dx
    assert [r.path for r in m.rows("p", under=["/d/a.txt"])] == ["/d/a.txt"]
    assert m.get("p", "/d/a.txt").chunk_ids == ("a", "b") and m.get("p", "/nope") is None
    assert m.pools() == ["p", "q"]
    assert Manifest(tmp_path / "sources.db", "s2").rows("p") == []  # another Chroma store sees nothing
    m.put([row("/d/a.txt", h="h2", ids=("c",))])
    assert m.get("p", "/d/a.txt").content_hash == "h2" and m.get("p", "/d/a.txt").info().chunks == 1
    m.delete("p", ["/d/a.txt", "/d/sub/b.txt"])
    assert [r.path for r in m.rows("p")] == ["/dx/c.txt"]


def test_a_failed_write_changes_nothing(tmp_path):
    m = Manifest(tmp_path / "sources.db", "s1")
    m.put([row("/d/a.txt")])
    bad = SourceRow("p", None, "h", "pipe", "text", "T", (), "now")  # path NOT NULL violated on the 2nd row
    with pytest.raises(sqlite3.IntegrityError):
        m.put([row("/d/b.txt"), bad])
    assert [r.path for r in m.rows("p")] == ["/d/a.txt"]
