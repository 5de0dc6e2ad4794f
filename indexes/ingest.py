"""Incremental, idempotent ingestion of files into one pool's Chroma collection.

Per file: hash the bytes; if the manifest has that hash (and the same embedder/chunker) and Chroma still holds its
chunks, it is unchanged. Otherwise read and chunk it, and add its chunks to a buffer that is flushed in one step:
(1) delete the older versions of the buffer's files from Chroma by a metadata filter, (2) embed the whole buffer in
one call and upsert it under deterministic ids, (3) write the finished files' manifest rows in one transaction.
A crash between any two steps leaves at most one version of a file, and a re-run repairs it without duplicates.

This is LlamaIndex's readers and node parsers without its `IngestionPipeline`: the pipeline's docstore dedup lives
in a separate store that cannot be committed together with Chroma, and it assigns random node ids, so a crash
before the docstore is persisted re-adds every chunk. This module does not search (see `indexes.store`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection

from agentmem.crashpoints import crash_point
from agentmem.errors import AgentmemError
from agentmem.settings import Settings
from indexes.chunking import Chunker
from indexes.client import get_collection, validate_pool
from indexes.embedder import EmbedderLike
from indexes.files import Candidate, walk
from indexes.manifest import Manifest, SourceRow, now_iso
from indexes.readers import ReadError, SkipFile, read_document
from indexes.records import Chunk, FileIssue, IngestProgress, IngestReport

log = logging.getLogger(__name__)
ProgressFn = Callable[[IngestProgress], None]
_WHERE_BATCH = 100  # files per metadata filter: keeps Chroma's where clauses small
_pool_locks: dict[str, threading.Lock] = {}
_pool_locks_guard = threading.Lock()


def chunk_id(pool: str, path: str, content_hash: str, pipeline: str, index: int) -> str:
    """Deterministic: the same file content ingested the same way always gets the same ids (upserts dedup)."""
    return hashlib.sha256(f"{pool}\0{path}\0{content_hash}\0{pipeline}\0{index}".encode()).hexdigest()[:32]


@dataclass
class _Pending:
    """A file whose chunks are (partly) in the buffer; its manifest row is written when `left` reaches 0."""

    row: SourceRow
    left: int
    cleared: bool = False  # its older versions were deleted from Chroma


@dataclass
class _Run:
    report: IngestReport
    collection: Collection
    started: float
    files_total: int
    files_done: int = 0
    buffer: list[tuple[Chunk, _Pending]] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)


class Ingester:
    def __init__(self, settings: Settings, client: ClientAPI, manifest: Manifest, embedder: EmbedderLike):
        self.settings = settings
        self.client = client
        self.manifest = manifest
        self.embedder = embedder
        self.chunker = Chunker(embedder.count_tokens, embedder.max_tokens, settings.chunk_size, settings.chunk_overlap)
        self.pipeline = hashlib.sha1(f"{embedder.name}|{self.chunker.config_key}".encode()).hexdigest()[:12]
        # Several embedding batches per flush: fewer Chroma calls, and sentence-transformers can sort a larger
        # set by length so padding is small even when files have few chunks each.
        self.flush_size = max(256, 8 * settings.embed_batch_size)

    def run(self, paths: Sequence[str | os.PathLike[str]], pool: str, *, prune: bool = False,
            progress: ProgressFn | None = None) -> IngestReport:
        validate_pool(pool)
        with _pool_lock(pool):
            return self._run(paths, pool, prune, progress)

    def _run(self, paths, pool, prune, progress) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(pool=pool)
        walked = walk(paths, self.settings.max_file_bytes)
        report.skipped.extend(walked.skipped)
        report.failed.extend(walked.failed)
        run = _Run(report, get_collection(self.client, "docs", pool, create=True), started, len(walked.files))
        known = {r.path: r for r in self.manifest.rows(pool)}
        unchanged: list[SourceRow] = []
        for cand in walked.files:
            data = self._read(cand, report)
            if data is not None:
                digest = hashlib.sha256(data).hexdigest()
                row = known.get(cand.path)
                if row and row.content_hash == digest and row.pipeline == self.pipeline:
                    unchanged.append(row)
                else:
                    self._add_file(run, cand.path, data, digest)
            run.files_done += 1
            self._tell(run, progress, cand.path)
        # The manifest says these are indexed; make sure Chroma agrees (a wiped or partly deleted collection).
        missing = self._missing_chunks(run.collection, unchanged)
        report.unchanged = len(unchanged) - len(missing)
        for row in missing:
            log.info("re-ingesting %s: its chunks are missing from Chroma", row.path)
            data = self._read(Candidate(row.path, 0), report)
            if data is not None:
                self._add_file(run, row.path, data, hashlib.sha256(data).hexdigest())
        self._flush(run)
        self._tell(run, progress, "")
        if prune:
            gone = [r.path for r in self.manifest.rows(pool, under=walked.roots) if r.path not in walked.present]
            report.chunks_removed += remove_sources(run.collection, self.manifest, pool, gone)
            report.pruned = gone
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _read(cand: Candidate, report: IngestReport) -> bytes | None:
        try:
            return read_bytes(cand.path)
        except PermissionError:
            report.failed.append(FileIssue(cand.path, "permission denied", "permission"))
        except OSError as exc:
            report.failed.append(FileIssue(cand.path, f"cannot read: {exc.strerror or exc}", "unreadable"))
        return None

    def _add_file(self, run: _Run, path: str, data: bytes, digest: str) -> None:
        report = run.report
        try:
            doc = read_document(path, data)
            pieces = self.chunker.chunk(doc)
        except SkipFile as exc:
            report.skipped.append(FileIssue(path, str(exc), exc.code))
            return
        except ReadError as exc:
            report.failed.append(FileIssue(path, str(exc), exc.code))
            return
        except Exception as exc:  # one odd file must not stop the batch; the reason goes in the report
            log.warning("failed to read %s", path, exc_info=True)
            report.failed.append(
                FileIssue(path, f"cannot parse: {type(exc).__name__}: {str(exc)[:200]}", "unexpected"))
            return
        if not pieces:
            report.skipped.append(FileIssue(path, "no text to index", "no_text"))
            return
        if doc.note:
            report.warnings.append(FileIssue(path, doc.note, "warning"))
        pool, when = report.pool, now_iso()
        ids = [chunk_id(pool, path, digest, self.pipeline, i) for i in range(len(pieces))]
        pending = _Pending(SourceRow(pool, path, digest, self.pipeline, doc.kind, doc.title, tuple(ids), when),
                           left=len(pieces))
        run.pending.append(pending)
        base = {"pool": pool, "source": path, "file_name": os.path.basename(path), "content_hash": digest,
                "pipeline": self.pipeline, "ingested_at": when, "chunk_count": len(pieces)}
        for i, (cid, piece) in enumerate(zip(ids, pieces, strict=True)):
            meta = {**base, **piece.metadata, "chunk_index": i}
            run.buffer.append((Chunk(cid, piece.text, piece.embed_text, meta), pending))
            if len(run.buffer) >= self.flush_size:
                self._flush(run)

    def _flush(self, run: _Run) -> None:
        if not run.buffer:
            return
        col, report = run.collection, run.report
        # 1. Older versions of these files go first, so a crash after this leaves no second version behind.
        fresh = [p for p in run.pending if not p.cleared]
        stale = [{"$and": [{"source": p.row.path},
                           {"$or": [{"content_hash": {"$ne": p.row.content_hash}}, {"pipeline": {"$ne": self.pipeline}}]}]}
                 for p in fresh]
        report.chunks_removed += delete_where(col, stale)
        for p in fresh:
            p.cleared = True
        # 2. One embedding call for the whole buffer, then upserts in Chroma's largest batch size.
        chunks = [c for c, _ in run.buffer]
        vectors = self.embedder.embed([c.embed_text for c in chunks])
        step = max(1, min(self.client.get_max_batch_size(), 5000))
        try:
            for i in range(0, len(chunks), step):
                part = chunks[i:i + step]
                col.upsert(ids=[c.id for c in part], embeddings=vectors[i:i + step],
                           documents=[c.text for c in part], metadatas=[c.metadata for c in part])
        except Exception as exc:
            raise AgentmemError(f"writing to Chroma failed: {exc}",
                                "check the Chroma server or data folder, then re-run the same ingest") from exc
        for _, p in run.buffer:
            p.left -= 1
        report.chunks_added += len(chunks)
        run.buffer.clear()
        crash_point("ingest.flush")  # chunks in Chroma, files not yet recorded: a re-run upserts the same ids
        # 3. Only files whose every chunk is in Chroma are recorded as done.
        done = [p for p in run.pending if p.left == 0]
        self.manifest.put(p.row for p in done)
        report.files += len(done)
        run.pending = [p for p in run.pending if p.left > 0]

    def _missing_chunks(self, col: Collection, rows: list[SourceRow]) -> list[SourceRow]:
        wanted = [cid for r in rows for cid in r.chunk_ids]
        found: set[str] = set()
        for i in range(0, len(wanted), 2000):
            found.update(col.get(ids=wanted[i:i + 2000], include=[])["ids"])
        return [r for r in rows if not all(cid in found for cid in r.chunk_ids)]

    @staticmethod
    def _tell(run: _Run, progress: ProgressFn | None, path: str) -> None:
        if progress is not None:
            progress(IngestProgress(run.files_done, run.files_total, run.report.chunks_added, path,
                                    time.perf_counter() - run.started))


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def remove_sources(col: Collection | None, manifest: Manifest, pool: str, paths: Iterable[str]) -> int:
    """Delete these sources' chunks from Chroma, then their manifest rows; returns the chunks deleted."""
    paths = list(paths)
    removed = delete_where(col, [{"source": p} for p in paths]) if col is not None else 0
    manifest.delete(pool, paths)
    return removed


def delete_where(col: Collection, clauses: list[dict]) -> int:
    """Delete the chunks matching any of the metadata filters; returns how many there were."""
    removed = 0
    for i in range(0, len(clauses), _WHERE_BATCH):
        part = clauses[i:i + _WHERE_BATCH]
        ids = col.get(where=part[0] if len(part) == 1 else {"$or": part}, include=[])["ids"]
        if ids:
            col.delete(ids=ids)
            removed += len(ids)
    return removed


def _pool_lock(pool: str) -> threading.Lock:
    """One ingest per pool at a time in this process (the agent and the app may both ingest)."""
    with _pool_locks_guard:
        return _pool_locks.setdefault(pool, threading.Lock())
