"""Ingesting a hostile folder (tests/hostile_corpus.py) with the real MiniLM embedder into embedded Chroma.

The ingest returns (no crash); every entry it meets is accounted for exactly once, as ingested, skipped or failed
with the expected reason code, and no failure is an unnamed ("unexpected") one; nothing outside the folder is read
or stored (the secret marker is in no chunk and no search result, the links to it are reported as skipped); chunks
and their metadata stay bounded; a re-ingest adds and removes nothing. The default run has about 150 entries and
files over a 1 MiB limit; the nightly run has 1,000 entries and the default 20 MiB limit, with 6 MiB of one line
of hex and 12 MiB of whitespace within it and a 20 MiB + 1 byte file over it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

import indexes.ingest
from agentmem.settings import Settings
from indexes.chunking import MAX_CHARS_PER_TOKEN
from indexes.client import get_collection
from indexes.embedder import shared_embedder
from indexes.records import ISSUE_CODES, ingest_counts
from indexes.store import KnowledgeBase
from tests.hostile_corpus import MB, HostileExpected, make_hostile_corpus, restore_permissions

pytestmark = pytest.mark.integration
POOL = "hostile"


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return shared_embedder(Settings(home=tmp_path_factory.mktemp("embed-home")))


def outcomes(report, kb) -> dict[str, tuple[str, str, str]]:
    """path -> (status, code, reason) for everything the report and the manifest mention; a path twice fails."""
    seen: dict[str, tuple[str, str, str]] = {}
    rows = [(s.path, ("ingested", "", s.kind)) for s in kb.sources(POOL)]
    rows += [(i.path, ("skipped", i.code, i.reason)) for i in report.skipped]
    rows += [(i.path, ("failed", i.code, i.reason)) for i in report.failed]
    for path, outcome in rows:
        assert path not in seen, f"{path} reported twice: {seen[path]} and {outcome}"
        seen[path] = outcome
    return seen


def ingest_hostile(tmp_path: Path, embedder, monkeypatch, *, n_files: int, max_file_bytes: int,
                   **sizes) -> tuple[HostileExpected, dict]:
    started = time.perf_counter()
    exp = make_hostile_corpus(tmp_path / "corpus", tmp_path / "outside", n_files=n_files,
                              max_file_bytes=max_file_bytes, **sizes)
    made = time.perf_counter() - started
    kb = KnowledgeBase(Settings(home=tmp_path / "home", max_file_bytes=max_file_bytes), embedder=embedder)
    opened: list[str] = []
    read_bytes = indexes.ingest.read_bytes

    def recording_read(path):  # the ingester's only way to a file's bytes (PDFs are parsed from the same path)
        opened.append(path)
        return read_bytes(path)

    monkeypatch.setattr(indexes.ingest, "read_bytes", recording_read)
    try:
        report = kb.ingest([exp.root], pool=POOL)
        again = kb.ingest([exp.root], pool=POOL)
    finally:
        restore_permissions(exp.root)

    # Every entry accounted for, once, as expected; every problem named.
    got = outcomes(report, kb)
    wrong = {p: (exp.entries.get(p), got.get(p)) for p in set(exp.entries) | set(got)
             if p not in got or p not in exp.entries or got[p][0] != exp.entries[p].status
             or got[p][1] != exp.entries[p].code}
    assert not wrong, "\n".join(f"{p}: expected {e}, got {g}" for p, e, g in
                                ((p, *v) for p, v in sorted(wrong.items())))
    assert not exp.ignored & set(got), exp.ignored & set(got)
    assert {i.path for i in report.warnings} == exp.warned
    for issue in report.skipped + report.failed:
        assert issue.reason and issue.code in ISSUE_CODES and issue.code not in ("unexpected", "other"), issue
    counts = ingest_counts(report)
    assert counts["tried"] == exp.tried and counts["unexpected"] == 0
    assert counts["ingested"] == len(exp.paths("ingested")) and counts["failed"] == len(exp.paths("failed"))
    assert dict(Counter(o.code for o in exp.entries.values() if o.status == "failed")) == counts["failed_by"]

    # Nothing outside the folder was read or stored.
    root = str(exp.root) + os.sep
    assert opened and all(p.startswith(root) for p in opened), [p for p in opened if not p.startswith(root)]
    col = get_collection(kb.client, "docs", POOL, create=False)
    stored = col.get(include=["documents", "metadatas"])
    assert stored["ids"] and not any(exp.secret in d for d in stored["documents"])
    assert all(m["source"].startswith(root) for m in stored["metadatas"])
    for query in (exp.secret, "What is the vault launch code?", "secret marker never index this"):
        hits = kb.search(query, pool=POOL, k=10)
        assert hits and not any(exp.secret in h.text or not h.source.startswith(root) for h in hits)
    for question, path in exp.queries.items():
        assert kb.search(question, pool=POOL, k=1)[0].source == path, question

    # Bounded chunks, no amplification: a file's chunks hold at most a few times its text, metadata stays small.
    limit = kb.ingester.chunker.budget * MAX_CHARS_PER_TOKEN
    sizes_by_source: Counter[str] = Counter()
    for text, meta in zip(stored["documents"], stored["metadatas"]):
        assert len(text) <= limit, (meta["source"], len(text))
        assert sum(len(str(v)) for v in meta.values()) <= 2 * len(meta["source"]) + 1500, meta["source"]
        sizes_by_source[meta["source"]] += len(text)
    for source, chars in sizes_by_source.items():
        assert chars <= 6 * os.path.getsize(source) + 2000, (source, chars, os.path.getsize(source))

    # Re-ingesting the same folder changes nothing.
    assert (again.chunks_added, again.chunks_removed, again.files) == (0, 0, 0), again.to_dict()
    assert again.unchanged == len(exp.paths("ingested")) and col.count() == report.chunks_added
    timings = {"entries": exp.tried, "make_s": round(made, 1), "ingest_s": round(report.seconds, 1),
               "reingest_s": round(again.seconds, 1), "chunks": report.chunks_added} | counts
    print(f"\nhostile corpus: {timings}")
    return exp, timings


def test_hostile_folder_is_ingested_without_a_crash_or_a_leak(tmp_path, embedder, monkeypatch):
    ingest_hostile(tmp_path, embedder, monkeypatch, n_files=150, max_file_bytes=1 * MB,
                   huge_sizes=(5 * MB, 20 * MB + 1), blob_bytes=128 * 1024)


@pytest.mark.nightly
def test_thousand_file_hostile_folder_with_default_limits(tmp_path, embedder, monkeypatch):
    limit = Settings().max_file_bytes  # 20 MiB
    ingest_hostile(tmp_path, embedder, monkeypatch, n_files=1000, max_file_bytes=limit,
                   huge_sizes=(limit + 1,), blob_bytes=6 * MB, blank_bytes=12 * MB)
