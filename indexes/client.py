"""Connecting to Chroma and naming its collections.

Embedded `PersistentClient` under `settings.chroma_dir` by default, `HttpClient` when `settings.chroma_url` is set;
telemetry off either way. Each pool has its own collections (`docs__<pool>` for ingested chunks, `memory__<pool>`
for taught facts), so pools never see each other's chunks. This module does not embed, chunk or query.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Literal
from urllib.parse import urlparse

from agentmem.errors import AgentmemError
from agentmem.settings import POOL_PATTERN, Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

CollectionKind = Literal["docs", "memory"]
POOL_HINT = "a pool name is 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"
_CHROMA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,510}[A-Za-z0-9]$")


def validate_pool(pool: str) -> str:
    if not isinstance(pool, str) or not re.fullmatch(POOL_PATTERN, pool):
        raise AgentmemError(f"invalid pool name {pool!r}", POOL_HINT)
    return pool


def collection_name(kind: CollectionKind, pool: str) -> str:
    """`<kind>__<pool>`; pools Chroma would reject as a name suffix ('a-', 'a..b') get a hashed suffix instead."""
    name = f"{kind}__{validate_pool(pool)}"
    if _CHROMA_NAME.match(name) and ".." not in name:
        return name
    safe = re.sub(r"[^A-Za-z0-9]", "_", pool)
    return f"{kind}__{safe}_{hashlib.sha1(pool.encode()).hexdigest()[:10]}"


def store_id(settings: Settings) -> str:
    """Which Chroma a manifest row describes, so switching between embedded and a server never mixes them up."""
    return f"url:{settings.chroma_url.rstrip('/')}" if settings.chroma_url else f"path:{settings.chroma_dir.resolve()}"


def open_client(settings: Settings) -> ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if not settings.chroma_url:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    url = urlparse(settings.chroma_url if "://" in settings.chroma_url else f"http://{settings.chroma_url}")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AgentmemError(f"AGENTMEM_CHROMA_URL={settings.chroma_url!r} is not an http(s) URL",
                            "use e.g. http://127.0.0.1:8000")
    ssl = url.scheme == "https"
    try:
        client = chromadb.HttpClient(host=url.hostname, port=url.port or (443 if ssl else 8000), ssl=ssl,
                                     settings=chroma_settings)
        client.heartbeat()
    except Exception as exc:
        raise AgentmemError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}",
                            "start it with `chroma run --path DIR`, or unset AGENTMEM_CHROMA_URL for the embedded store") from exc
    return client


def get_collection(client: ClientAPI, kind: CollectionKind, pool: str, *, create: bool) -> Collection | None:
    """The pool's collection (cosine space, vectors supplied by us); None when absent and `create` is False."""
    name = collection_name(kind, pool)
    if create:
        return client.get_or_create_collection(
            name, configuration={"hnsw": {"space": "cosine"}}, metadata={"pool": pool, "kind": kind},
            embedding_function=None,
        )
    try:
        return client.get_collection(name, embedding_function=None)
    except Exception as exc:  # chromadb raises NotFoundError (embedded) or a ValueError/HTTP error (server)
        if "does not exist" in str(exc) or "not found" in str(exc).lower():
            return None
        raise


def list_pools(client: ClientAPI, kind: CollectionKind | None = None) -> list[str]:
    pools = set()
    for col in client.list_collections():
        meta = col.metadata or {}
        if meta.get("pool") and (kind is None or meta.get("kind") == kind):
            pools.add(str(meta["pool"]))
    return sorted(pools)
