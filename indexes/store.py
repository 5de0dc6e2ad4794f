"""The knowledge base the agent and the UI use: ingest files into a pool, search it, and keep taught facts.

`KnowledgeBase` ties together the Chroma client, the source manifest and the shared embedder. Documents live in
the pool's `docs__<pool>` collection, taught facts in its `memory__<pool>` collection; both are searched with the
same embedder and return `Hit`s whose score is cosine similarity in [0, 1]. There is no keyword/vector hybrid:
on the film benchmark BM25+vector fusion lowered hit@1 (0.857 vs 0.984) for +0.005 hit@5 (bench/ingest.py --hybrid).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.errors import InvalidArgumentError

from agentmem.errors import AgentmemError, NotFound
from agentmem.settings import Settings
from indexes.client import get_collection, list_pools, open_client, store_id, validate_pool
from indexes.embedder import EmbedderLike, shared_embedder
from indexes.ingest import Ingester, ProgressFn, remove_sources
from indexes.manifest import Manifest
from indexes.records import Hit, IngestReport, Scalar, SourceInfo


class KnowledgeBase:
    """Thread-safe; build one per process with `open_store(settings)` and share it."""

    def __init__(self, settings: Settings, *, embedder: EmbedderLike | None = None, client: ClientAPI | None = None):
        self.settings = settings
        self.client = client if client is not None else open_client(settings)
        self.manifest = Manifest(settings.sources_db_path, store_id(settings))
        self._embedder = embedder
        self._lock = threading.Lock()
        self._ingester: Ingester | None = None

    @property
    def embedder(self) -> EmbedderLike:
        """Loaded on first use: listing sources or pools needs no model."""
        with self._lock:
            if self._embedder is None:
                self._embedder = shared_embedder(self.settings)
            return self._embedder

    @property
    def ingester(self) -> Ingester:
        embedder = self.embedder
        with self._lock:
            if self._ingester is None:
                self._ingester = Ingester(self.settings, self.client, self.manifest, embedder)
            return self._ingester

    def _pool(self, pool: str | None) -> str:
        return validate_pool(self.settings.default_pool if pool is None else pool)

    # -- documents ---------------------------------------------------------------------------------------------------

    def ingest(self, paths: Sequence[str | os.PathLike[str]], pool: str | None = None, *, prune: bool = False,
               progress: ProgressFn | None = None) -> IngestReport:
        """Index files and folders into the pool; unchanged files are skipped, changed ones replaced."""
        return self.ingester.run(paths, self._pool(pool), prune=prune, progress=progress)

    def search(self, query: str, pool: str | None = None, k: int | None = None,
               where: Mapping[str, Any] | None = None, min_score: float | None = None) -> list[Hit]:
        """The pool's k chunks most similar to `query`, best first; `where` is a Chroma metadata filter
        (e.g. {"kind": "pdf"} or {"source": "/abs/path"})."""
        pool = self._pool(pool)
        return self._query(get_collection(self.client, "docs", pool, create=False), pool, query, k, where, min_score)

    def sources(self, pool: str | None = None) -> list[SourceInfo]:
        return [r.info() for r in self.manifest.rows(self._pool(pool))]

    def remove_source(self, path: str | os.PathLike[str], pool: str | None = None) -> int:
        """Forget one file, or every file under a folder; returns how many chunks were deleted."""
        pool = self._pool(pool)
        candidates = {os.path.abspath(os.fspath(path)), os.path.realpath(os.fspath(path))}
        rows = self.manifest.rows(pool, under=candidates)
        if not rows:
            raise NotFound(f"no source {os.fspath(path)!r} in pool {pool!r}", "see: agentmem sources list --pool " + pool)
        col = get_collection(self.client, "docs", pool, create=False)
        return remove_sources(col, self.manifest, pool, [r.path for r in rows])

    def pools(self) -> list[str]:
        return sorted(set(list_pools(self.client)) | set(self.manifest.pools()))

    def count(self, pool: str | None = None) -> int:
        col = get_collection(self.client, "docs", self._pool(pool), create=False)
        return col.count() if col is not None else 0

    # -- taught facts ------------------------------------------------------------------------------------------------

    def remember(self, pool: str | None, fact_id: str, text: str, metadata: Mapping[str, Scalar] | None = None) -> None:
        """Write (or overwrite) one fact in the pool's memory collection under its own id."""
        pool = self._pool(pool)
        if not fact_id or not text.strip():
            raise AgentmemError("a fact needs an id and some text", "pass a non-empty fact_id and text")
        meta = {k: v for k, v in (metadata or {}).items() if isinstance(v, str | int | float | bool)}
        meta.update(pool=pool, fact_id=fact_id, source=f"memory:{fact_id}", kind="fact")
        vector = self.embedder.embed([text])
        col = get_collection(self.client, "memory", pool, create=True)
        col.upsert(ids=[fact_id], embeddings=vector, documents=[text], metadatas=[meta])

    def forget(self, pool: str | None, fact_id: str) -> bool:
        """Delete one fact; False if the pool's memory did not hold it."""
        col = get_collection(self.client, "memory", self._pool(pool), create=False)
        if col is None or not col.get(ids=[fact_id], include=[])["ids"]:
            return False
        col.delete(ids=[fact_id])
        return True

    def memory_ids(self, pool: str | None = None) -> set[str]:
        """Ids of the facts the pool's memory collection holds."""
        col = get_collection(self.client, "memory", self._pool(pool), create=False)
        return set(col.get(include=[])["ids"]) if col is not None else set()

    def search_memory(self, query: str, pool: str | None = None, k: int | None = None,
                      min_score: float | None = None) -> list[Hit]:
        pool = self._pool(pool)
        return self._query(get_collection(self.client, "memory", pool, create=False), pool, query, k, None, min_score)

    # -- shared --------------------------------------------------------------------------------------------------

    def _query(self, col: Collection | None, pool: str, query: str, k: int | None,
               where: Mapping[str, Any] | None, min_score: float | None) -> list[Hit]:
        k = k or self.settings.top_k
        if col is None or not query.strip():
            return []
        kwargs: dict[str, Any] = {"where": dict(where)} if where else {}
        try:  # Chroma returns fewer than n_results when the collection (or the filter) holds fewer
            res = col.query(query_embeddings=self.embedder.embed([query]), n_results=k,
                            include=["documents", "metadatas", "distances"], **kwargs)
        except (ValueError, InvalidArgumentError) as exc:  # a malformed where filter: the caller's mistake
            raise AgentmemError(f"invalid metadata filter {where!r}: {exc}",
                                'use Chroma filter syntax, e.g. {"kind": "pdf"}') from exc
        hits = []
        for cid, text, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                         res["distances"][0], strict=True):
            meta = dict(meta or {})
            score = max(0.0, min(1.0, 1.0 - float(dist)))  # cosine distance: 1 - cosine similarity
            if min_score is not None and score < min_score:
                continue
            hits.append(Hit(
                text=text or "", score=score, pool=pool, chunk_id=cid, source=str(meta.get("source", "")),
                title=str(meta.get("title", "")), section=str(meta.get("section", "")), kind=str(meta.get("kind", "")),
                page=meta.get("page"), line_start=meta.get("line_start"), line_end=meta.get("line_end"), metadata=meta))
        return hits


def open_store(settings: Settings, **kwargs: Any) -> KnowledgeBase:
    """The knowledge base for these settings (embedded Chroma, or the server at settings.chroma_url)."""
    return KnowledgeBase(settings, **kwargs)

