"""`agentmem check`: is the data folder whole? Used after a crash (and by the crash-safety tests).

It checks, without loading any model:
- both SQLite files pass `PRAGMA integrity_check`;
- the adapter registry: leftovers of a crashed publish are removed (opening the registry does that), every
  registered version's folder holds its adapter and a readable manifest, and the active version is one of them;
- each pool's document index against the ingest manifest: every recorded chunk is in Chroma, no file has two
  versions in Chroma (a duplicate), and chunks no manifest row records are counted (a crash mid-ingest leaves
  those; re-running the ingest records them);
- each pool's memory collection against the memory log (a crash between the two writes of a taught fact);
- consolidation runs left running by a dead process.

With `repair`, what can be repaired is: dead runs are closed (facts of a published run are marked), the memory
collection is rebuilt from the log. The index is repaired by re-running the interrupted ingest.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

from agentmem.consolidate import recover_stale_runs
from agentmem.memory import open_memory_log
from agentmem.registry import open_registry
from agentmem.settings import Settings
from graphs.facts import sync_memory
from indexes.client import get_collection
from indexes.store import open_store


def sqlite_ok(path: Path) -> str:
    if not path.exists():
        return "absent"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def check_index(knowledge, pool: str) -> dict[str, Any]:
    rows = knowledge.manifest.rows(pool)
    col = get_collection(knowledge.client, "docs", pool, create=False)
    got = col.get(include=["metadatas"]) if col is not None else {"ids": [], "metadatas": []}
    in_chroma = set(got["ids"])
    recorded = {cid for r in rows for cid in r.chunk_ids}
    versions: dict[str, set[str]] = defaultdict(set)
    for meta in got["metadatas"] or []:
        meta = meta or {}
        versions[str(meta.get("source"))].add(f"{meta.get('content_hash')}|{meta.get('pipeline')}")
    return {
        "sources": len(rows),
        "chunks": len(in_chroma),
        "missing_chunks": len(recorded - in_chroma),
        "unrecorded_chunks": len(in_chroma - recorded),
        "duplicate_sources": sorted(s for s, v in versions.items() if len(v) > 1),
    }


def check_data_folder(settings: Settings, *, repair: bool = False) -> dict[str, Any]:
    problems: list[str] = []
    report: dict[str, Any] = {"home": str(settings.home), "sqlite": {}, "pools": {}, "repaired": []}
    for name, path in (("memory", settings.db_path), ("sources", settings.sources_db_path)):
        verdict = report["sqlite"][name] = sqlite_ok(path)
        if verdict not in ("ok", "absent"):
            problems.append(f"{path.name}: {verdict}")

    registry = open_registry(settings)  # removes what a crashed publish left behind
    report["registry_removed"] = [str(p) for p in registry.last_recovery.removed] if registry.last_recovery else []
    problems += [f"adapter folder missing: {m}" for m in (registry.last_recovery.missing if registry.last_recovery
                                                          else [])]
    memory = open_memory_log(settings)
    knowledge = open_store(settings)
    try:
        pools = sorted(set(memory.list_pools()) | set(knowledge.pools()) | set(registry.pools()))
        for pool in pools:
            info: dict[str, Any] = {}
            run = memory.active_run(pool)
            if repair and run is not None and recover_stale_runs(memory, pool, registry):
                report["repaired"].append(f"{pool}: closed run {run.id} left by a dead process")
            info["index"] = idx = check_index(knowledge, pool)
            if idx["missing_chunks"] or idx["duplicate_sources"]:
                problems.append(f"pool {pool}: index has {idx['missing_chunks']} missing chunks and duplicate "
                                f"versions of {idx['duplicate_sources'] or 'no file'}")
            facts = memory.list_facts(pool)
            active = {f.id for f in facts if f.active}
            held = knowledge.memory_ids(pool)
            info["facts"] = {"total": len(facts), "active": len(active), "pending": sum(f.status == "pending"
                                                                                        for f in facts)}
            info["memory_out_of_step"] = len(active ^ held)
            if active != held:
                if repair:
                    written, removed = sync_memory(memory, knowledge, pool)
                    report["repaired"].append(f"{pool}: memory collection +{written} -{removed}")
                else:
                    problems.append(f"pool {pool}: memory collection differs from the log by {len(active ^ held)} "
                                    "facts (repair: agentmem check --repair, or any agent start)")
            versions = registry.list(pool)
            current = registry.active(pool)
            info["adapters"] = {"versions": [v.version for v in versions],
                                "active": current.version if current else None}
            for v in versions:
                files = ("adapter_config.json", "adapter_model.safetensors", "manifest.json")
                absent = [f for f in files if not (v.path / f).is_file()]
                if absent:
                    problems.append(f"pool {pool}: adapter {v.version} lacks {', '.join(absent)}")
                else:
                    try:
                        v.manifest()
                    except Exception as exc:  # a manifest that does not validate is a problem to report, not raise
                        problems.append(f"pool {pool}: adapter {v.version} manifest unreadable: {exc}")
            run = memory.active_run(pool)
            info["active_run"] = run.id if run else None
            report["pools"][pool] = info
    finally:
        memory.close()
        registry.close()
    report["problems"] = problems
    report["ok"] = not problems
    return report
