"""KnowledgeBase over embedded Chroma with a fake embedder: idempotent re-ingest, replacement, prune, crashes,
pools, bad input, search filters and the memory collection."""

import os

import pytest
from chromadb.api.models.Collection import Collection

import indexes.ingest
from agentmem.errors import AgentmemError, NotFound
from indexes.client import collection_name, get_collection
from indexes.store import KnowledgeBase
from tests.fake_embedder import FakeEmbedder
from tests.ingest_corpus import MAX_FILE_BYTES, make_corpus


@pytest.fixture
def kb(settings):
    return KnowledgeBase(settings.model_copy(update={"max_file_bytes": MAX_FILE_BYTES}), embedder=FakeEmbedder())


def write_notes(folder, n=5):
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["volcano", "glacier", "desert", "rainforest", "tundra", "savanna", "marsh", "reef"]
    for i in range(n):
        (folder / f"n{i}.txt").write_text(f"The {topics[i]} note number {i} describes the {topics[i]} biome.\n")
    return folder


def chunks_of(kb, pool="default", source=None):
    col = get_collection(kb.client, "docs", pool, create=False)
    got = col.get(where={"source": source} if source else None, include=["documents", "metadatas"])
    return list(zip(got["ids"], got["documents"], got["metadatas"], strict=True))


def test_mixed_folder_report_and_reingest_adds_nothing(kb, tmp_path):
    exp = make_corpus(tmp_path / "corpus", outside=tmp_path / "outside")
    report = kb.ingest([tmp_path / "corpus"])
    assert report.files == len(exp.good) and report.chunks_added >= len(exp.good)
    assert {os.path.basename(s.path): s.kind for s in kb.sources()} == {
        os.path.basename(k): v for k, v in exp.good.items()}
    skipped = {os.path.basename(i.path): i.reason for i in report.skipped}
    assert skipped.keys() == exp.skipped.keys()
    assert all(words in skipped[name] for name, words in exp.skipped.items())
    failed = {os.path.basename(i.path): i.reason for i in report.failed}
    assert failed.keys() == exp.failed.keys() and all(w in failed[n] for n, w in exp.failed.items())
    assert {os.path.basename(i.path) for i in report.warnings} == exp.warned
    stored = {m["source"] for _, _, m in chunks_of(kb)}
    assert not any(part in s for s in stored for part in ("node_modules", ".git", "__pycache__", ".env", "outside"))
    again = kb.ingest([tmp_path / "corpus"])
    assert (again.chunks_added, again.chunks_removed, again.files, again.unchanged) == (0, 0, 0, len(exp.good))
    assert len(chunks_of(kb)) == report.chunks_added


def test_embedding_is_batched_across_files(kb, tmp_path):
    kb.ingest([write_notes(tmp_path / "notes", 8)])
    assert kb.embedder.calls == [8]  # one call for the whole buffer, not one per file or chunk


def test_changed_file_replaces_its_chunks_and_prune_removes_gone_files(kb, tmp_path):
    folder = write_notes(tmp_path / "notes")
    kb.ingest([folder])
    target = str(folder / "n0.txt")
    (folder / "n0.txt").write_text("Completely new words about a lighthouse.\n")
    report = kb.ingest([folder])
    assert (report.files, report.unchanged, report.chunks_added, report.chunks_removed) == (1, 4, 1, 1)
    chunks = chunks_of(kb, source=target)
    assert len(chunks) == 1 and "lighthouse" in chunks[0][1]
    assert kb.search("lighthouse", k=1)[0].source == target
    os.remove(folder / "n1.txt")
    assert kb.ingest([folder]).pruned == []  # without --prune nothing is removed
    assert len(chunks_of(kb)) == 5
    report = kb.ingest([folder], prune=True)
    assert report.pruned == [str(folder / "n1.txt")] and report.chunks_removed == 1
    assert len(chunks_of(kb)) == 4 and [s.path for s in kb.sources() if s.path.endswith("n1.txt")] == []


def test_prune_only_touches_the_given_folders(kb, tmp_path):
    a, b = write_notes(tmp_path / "a", 2), write_notes(tmp_path / "b", 2)
    kb.ingest([a, b])
    os.remove(b / "n0.txt")
    assert kb.ingest([a], prune=True).pruned == []
    assert kb.ingest([b], prune=True).pruned == [str(b / "n0.txt")]


def failing_upsert(monkeypatch, fail_on_call):
    calls = {"n": 0}
    real = Collection.upsert

    def upsert(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_on_call:
            raise RuntimeError("simulated crash")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "upsert", upsert)


def test_crash_midway_then_rerun_leaves_no_duplicates(kb, tmp_path, monkeypatch):
    folder = write_notes(tmp_path / "notes", 5)
    kb.ingester.flush_size = 2
    failing_upsert(monkeypatch, fail_on_call=2)
    with pytest.raises(AgentmemError, match="writing to Chroma failed"):
        kb.ingest([folder])
    assert len(kb.sources()) == 2 and len(chunks_of(kb)) == 2  # only what was fully written is recorded
    monkeypatch.undo()
    report = kb.ingest([folder])
    assert (report.unchanged, report.files) == (2, 3)
    chunks = chunks_of(kb)
    assert len(chunks) == 5 and len({m["source"] for _, _, m in chunks}) == 5


def test_crash_while_replacing_never_leaves_two_versions(kb, tmp_path, monkeypatch):
    folder = write_notes(tmp_path / "notes", 2)
    kb.ingest([folder])
    target = str(folder / "n0.txt")
    (folder / "n0.txt").write_text("Second version mentions a windmill.\n")
    failing_upsert(monkeypatch, fail_on_call=1)
    with pytest.raises(AgentmemError):
        kb.ingest([folder])
    assert chunks_of(kb, source=target) == []  # old version gone first, new one not written: never both
    monkeypatch.undo()
    report = kb.ingest([folder])
    assert report.files == 1 and [c[1] for c in chunks_of(kb, source=target)] == ["Second version mentions a windmill."]


def test_chunks_missing_from_chroma_are_restored(kb, tmp_path):
    folder = write_notes(tmp_path / "notes", 3)
    kb.ingest([folder])
    col = get_collection(kb.client, "docs", "default", create=False)
    col.delete(where={"source": str(folder / "n2.txt")})
    report = kb.ingest([folder])
    assert (report.unchanged, report.files, report.chunks_added) == (2, 1, 1) and col.count() == 3


def test_a_new_embedder_reingests_everything(kb, tmp_path, settings):
    folder = write_notes(tmp_path / "notes", 2)
    kb.ingest([folder])
    other = FakeEmbedder()
    other.name = "another-model"
    report = KnowledgeBase(settings, embedder=other).ingest([folder])
    assert (report.files, report.unchanged, report.chunks_removed) == (2, 0, 2) and len(chunks_of(kb)) == 2


def test_unreadable_file_is_one_failure_and_the_batch_goes_on(kb, tmp_path, monkeypatch):
    # Tests run as root, where chmod 000 does not stop reads; simulate the PermissionError instead.
    folder = write_notes(tmp_path / "notes", 3)
    locked = str(folder / "n1.txt")
    real = indexes.ingest.read_bytes

    def read_bytes(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(indexes.ingest, "read_bytes", read_bytes)
    report = kb.ingest([folder])
    assert [(i.path, i.reason) for i in report.failed] == [(locked, "permission denied")]
    assert report.files == 2 and not report.ok


def test_pools_are_isolated_and_validated(kb, tmp_path):
    kb.ingest([write_notes(tmp_path / "a", 2)], pool="alpha")
    kb.ingest([write_notes(tmp_path / "b", 3)], pool="beta")
    assert {h.source.split("/")[-2] for h in kb.search("biome note", pool="alpha", k=10)} == {"a"}
    assert {h.source.split("/")[-2] for h in kb.search("biome note", pool="beta", k=10)} == {"b"}
    assert kb.search("biome", pool="gamma") == [] and kb.count("alpha") == 2
    assert {"alpha", "beta"} <= set(kb.pools())
    for bad in ("", "-x", "a b", "x" * 64, "../etc"):
        with pytest.raises(AgentmemError, match="invalid pool name"):
            kb.search("q", pool=bad)
    # Pool names Chroma would refuse as collection names still get a valid, distinct collection.
    assert collection_name("docs", "a-") != collection_name("docs", "a_")
    kb.ingest([tmp_path / "a"], pool="odd..pool-")
    assert kb.count("odd..pool-") == 2


def test_search_scores_filters_and_min_score(kb, tmp_path):
    folder = write_notes(tmp_path / "notes", 4)
    hits = kb.search("glacier biome", k=3)
    assert hits == []  # nothing ingested yet
    kb.ingest([folder])
    hits = kb.search("glacier biome", k=3)
    assert hits[0].source == str(folder / "n1.txt") and hits[0].pool == "default"
    assert all(0.0 <= h.score <= 1.0 for h in hits) and hits[0].score >= hits[-1].score
    assert hits[0].line_start == 1 and hits[0].kind == "text" and hits[0].metadata["content_hash"]
    only = kb.search("glacier biome", k=3, where={"source": str(folder / "n3.txt")})
    assert [h.source for h in only] == [str(folder / "n3.txt")]
    assert all(h.score >= 0.5 for h in kb.search("glacier biome", k=4, min_score=0.5))
    with pytest.raises(AgentmemError, match="invalid metadata filter"):
        kb.search("glacier", where={"$bogus": 1})


def test_remove_source_by_file_or_folder(kb, tmp_path):
    folder = write_notes(tmp_path / "notes", 3)
    kb.ingest([folder])
    assert kb.remove_source(folder / "n0.txt") == 1 and len(kb.sources()) == 2
    assert kb.remove_source(folder) == 2 and kb.sources() == [] and chunks_of(kb) == []
    with pytest.raises(NotFound):
        kb.remove_source(folder / "n0.txt")


def test_memory_collection_is_per_pool(kb):
    kb.remember("alpha", "fact-1", "The capital of Zorgonia is Plink.", {"by": "user", "bad": None})
    kb.remember("alpha", "fact-2", "Tea is brewed at eighty degrees.")
    hits = kb.search_memory("capital of Zorgonia", pool="alpha", k=1)
    assert hits[0].chunk_id == "fact-1" and hits[0].source == "memory:fact-1" and hits[0].metadata["by"] == "user"
    assert kb.search_memory("capital of Zorgonia", pool="beta") == []
    assert kb.search("capital of Zorgonia", pool="alpha") == []  # facts are not documents
    kb.remember("alpha", "fact-1", "The capital of Zorgonia is Plonk.")  # same id overwrites
    assert kb.search_memory("capital Zorgonia", pool="alpha", k=5)[0].text.endswith("Plonk.")
    assert kb.forget("alpha", "fact-1") is True and kb.forget("alpha", "fact-1") is False
    assert [h.chunk_id for h in kb.search_memory("capital", pool="alpha", k=5)] == ["fact-2"]


def test_ingest_counts_sum_up_a_report(kb, tmp_path):
    from indexes.records import ingest_counts

    exp = make_corpus(tmp_path / "corpus", outside=tmp_path / "outside")
    counts = ingest_counts(kb.ingest([tmp_path / "corpus"]))
    assert counts["tried"] == len(exp.good) + len(exp.skipped) + len(exp.failed)
    assert (counts["ingested"], counts["unchanged"], counts["unexpected"]) == (len(exp.good), 0, 0)
    assert counts["failed_by"] == {"invalid_json": 1, "invalid_pdf": 1}
    assert counts["skipped_by"] == {"bad_name": 1, "binary": 1, "broken_link": 1, "empty": 1, "not_regular": 1,
                                    "outside": 1, "too_large": 1}
    again = ingest_counts(kb.ingest([tmp_path / "corpus"]))
    assert (again["tried"], again["ingested"], again["unchanged"], again["chunks_added"]) == (
        counts["tried"], 0, len(exp.good), 0)
