"""The adapter registry: versioned LoRA adapters per pool, atomic publish, activation and rollback.

A version lives in `adapters/<pool>/<version>/` (PEFT `save_pretrained` output plus manifest.json) and has a
row in agentmem.db. Publish fsyncs the folder, renames it into place, then records it (and the active pointer)
in one transaction, all under a per-pool file lock: a crash leaves an orphan folder that `recover()` removes,
never a row without its folder. Activations are an append-only stack, so rollback walks back. It does not
train or load adapters.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict

from agentmem.crashpoints import crash_point
from agentmem.db import Database
from agentmem.errors import AgentmemError, ConfigError, Conflict, NotFound
from agentmem.manifest import Manifest
from agentmem.memory.records import utcnow
from agentmem.settings import POOL_PATTERN, Settings

STAGING = ".staging"
LOCK_FILE = ".lock"
_VERSION = re.compile(r"^v([0-9]+)$")
_POOL = re.compile(POOL_PATTERN)
_INSERT_VERSION = (
    "INSERT INTO adapter_versions (pool, version, number, serving_name, base_model, parent_version,"
    " facts_hash, fact_count, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class AdapterVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    pool: str
    version: str
    number: int
    serving_name: str
    path: Path
    base_model: str
    parent_version: str | None
    facts_hash: str | None
    fact_count: int
    run_id: str | None
    created_at: datetime

    def manifest(self) -> Manifest:
        return Manifest.read(self.path)


class RecoveryReport(BaseModel):
    removed: list[Path] = []
    missing: list[str] = []  # "pool/version" rows whose folder is gone (reported, not fixed)


def _check_pool(pool: str) -> None:
    if not _POOL.match(pool):
        raise ConfigError(f"invalid pool name {pool!r}", "use letters, digits, '_', '.', '-' (max 63)")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copytree(src, dst)  # another file system: copy, then drop the source
        shutil.rmtree(src)


class AdapterRegistry:
    def __init__(self, settings: Settings, *, recover: bool = True):
        self.root = settings.adapters_dir
        self.db = Database(settings.db_path, busy_timeout_s=settings.db_busy_timeout_s)
        self.last_recovery: RecoveryReport | None = self.recover() if recover else None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------------------------------------
    def _version(self, row) -> AdapterVersion:
        data = {k: row[k] for k in row.keys() if k in AdapterVersion.model_fields}  # noqa: SIM118 (Row iterates values)
        return AdapterVersion(**data, path=self.root / row["pool"] / row["version"])

    def pools(self) -> builtins.list[str]:
        """Pools with at least one registered version."""
        with self.db.read() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT pool FROM adapter_versions ORDER BY pool")]

    def list(self, pool: str) -> builtins.list[AdapterVersion]:
        """All versions of `pool`, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM adapter_versions WHERE pool = ? ORDER BY number", (pool,)
            ).fetchall()
        return [self._version(r) for r in rows]

    def get(self, pool: str, version: str) -> AdapterVersion:
        with self.db.read() as conn:
            return self._get(conn, pool, version)

    def _get(self, conn, pool: str, version: str) -> AdapterVersion:
        row = conn.execute(
            "SELECT * FROM adapter_versions WHERE pool = ? AND version = ?", (pool, version)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"no adapter version {version} in pool {pool}", f"list them: agentmem adapters {pool}"
            )
        return self._version(row)

    def _stack(self, conn, pool: str) -> builtins.list[tuple[int, str | None]]:
        # Activations not undone by a rollback; the last is active. A NULL version means "the base model".
        rows = conn.execute(
            "SELECT seq, version FROM adapter_activations WHERE pool = ? AND undone_at IS NULL ORDER BY seq",
            (pool,),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def _active(self, conn, pool: str) -> AdapterVersion | None:
        stack = self._stack(conn, pool)
        if not stack or stack[-1][1] is None:
            return None
        return self._get(conn, pool, stack[-1][1])

    def active(self, pool: str) -> AdapterVersion | None:
        """The version served for `pool`, or None for the base model."""
        with self.db.read() as conn:
            return self._active(conn, pool)

    # ---- changing what is served ---------------------------------------------------------------------------
    def _push(self, conn, pool: str, version: str | None) -> None:
        conn.execute(
            "INSERT INTO adapter_activations (pool, version, activated_at) VALUES (?, ?, ?)",
            (pool, version, utcnow().isoformat()),
        )

    def activate(self, pool: str, version: str) -> AdapterVersion:
        with self.db.transaction() as conn:
            target = self._get(conn, pool, version)
            current = self._active(conn, pool)
            if current is None or current.version != version:
                self._push(conn, pool, version)
        return target

    def deactivate(self, pool: str) -> None:
        """Serve the base model for `pool` (rollback undoes this too)."""
        with self.db.transaction() as conn:
            if self._active(conn, pool) is not None:
                self._push(conn, pool, None)

    def rollback(self, pool: str) -> AdapterVersion | None:
        """Make the previously active version active again and return it (None: the base model, which was
        served before the first activation). Repeated rollbacks keep walking back."""
        with self.db.transaction() as conn:
            stack = self._stack(conn, pool)
            if not stack:
                raise Conflict(f"pool {pool} has nothing to roll back", "it already serves the base model")
            current = stack[-1][1]
            now = utcnow().isoformat()
            while stack and stack[-1][1] == current:  # skip repeats so each rollback changes what is served
                conn.execute(
                    "UPDATE adapter_activations SET undone_at = ? WHERE seq = ?", (now, stack.pop()[0])
                )
            crash_point("registry.rollback")  # inside the transaction: a kill here must leave the old state
            return self._active(conn, pool)

    # ---- publishing ----------------------------------------------------------------------------------------
    @contextmanager
    def _pool_lock(self, pool: str) -> Iterator[Path]:
        """Serializes publish and recovery of one pool across threads and processes."""
        folder = self.root / pool
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK_FILE, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _next_number(self, conn, folder: Path, pool: str) -> int:
        row = conn.execute("SELECT MAX(number) FROM adapter_versions WHERE pool = ?", (pool,)).fetchone()
        on_disk = [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.match(p.name))]
        return max([row[0] or 0, *on_disk]) + 1

    def publish(
        self, pool: str, staged_dir: Path, manifest: Manifest, *, activate: bool = True
    ) -> AdapterVersion:
        """Move the adapter folder written by training into the registry as the pool's next version.

        The folder is renamed into place (it is consumed; on failure it is put back), manifest.json is written
        into it with version, serving name and parent filled in, and the row plus (with `activate`) the active
        pointer are committed last."""
        _check_pool(pool)
        staged = Path(staged_dir)
        if not (staged / "adapter_config.json").is_file():
            raise AgentmemError(
                f"{staged} holds no adapter_config.json", "pass the folder PEFT save_pretrained wrote"
            )
        with self._pool_lock(pool) as folder:
            with self.db.read() as conn:
                number = self._next_number(conn, folder, pool)
                parent = manifest.parent_version
                if parent is None:
                    current = self._active(conn, pool)
                    parent = current.version if current else None
                else:
                    self._get(conn, pool, parent)
            version = f"v{number}"
            manifest = manifest.model_copy(
                update={
                    "pool": pool,
                    "version": version,
                    "parent_version": parent,
                    # never reused: vLLM caches adapters by name
                    "serving_name": f"{pool}-{version}-{uuid.uuid4().hex[:8]}",
                }
            )
            (folder / STAGING).mkdir(exist_ok=True)
            staging = folder / STAGING / f"{version}-{uuid.uuid4().hex[:8]}"
            final = folder / version
            _move(staged, staging)
            where = staging
            try:
                manifest.write(staging)
                _fsync_tree(staging)
                os.rename(
                    staging, final
                )  # `final` is free: _next_number saw every v<N> folder under the lock
                where = final
                _fsync_dir(folder)
                crash_point("registry.moved")
                self._record(manifest, number, activate)
            except BaseException:
                with contextlib.suppress(OSError):  # if it stays under adapters/, recover() removes it
                    _move(where, staged)  # give the caller its folder back
                raise
        return self.get(pool, version)

    def _record(self, manifest: Manifest, number: int, activate: bool) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                _INSERT_VERSION,
                (
                    manifest.pool,
                    manifest.version,
                    number,
                    manifest.serving_name,
                    manifest.base_model,
                    manifest.parent_version,
                    manifest.facts_hash,
                    len(manifest.fact_ids),
                    manifest.run_id,
                    manifest.created_at.isoformat(),
                ),
            )
            if activate:
                self._push(conn, manifest.pool, manifest.version)

    # ---- recovery ------------------------------------------------------------------------------------------
    def recover(self) -> RecoveryReport:
        """Remove staging leftovers and version folders the registry does not know (a crash before the
        commit); report rows whose folder is missing."""
        report = RecoveryReport()
        with self.db.read() as conn:
            rows = conn.execute("SELECT pool, version FROM adapter_versions").fetchall()
        known: dict[str, set[str]] = {}
        for row in rows:
            known.setdefault(row[0], set()).add(row[1])
        pools = (
            sorted(p.name for p in self.root.iterdir() if p.is_dir() and _POOL.match(p.name))
            if (self.root.is_dir())
            else []
        )
        for pool in pools:
            with self._pool_lock(pool) as folder:
                with self.db.read() as conn:  # re-read under the lock: a publish may have just committed
                    versions = {
                        r[0]
                        for r in conn.execute("SELECT version FROM adapter_versions WHERE pool = ?", (pool,))
                    }
                leftovers = [*(folder / STAGING).iterdir()] if (folder / STAGING).is_dir() else []
                orphans = [p for p in folder.iterdir() if _VERSION.match(p.name) and p.name not in versions]
                for path in leftovers + orphans:
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                    report.removed.append(path)
        for pool, versions in sorted(known.items()):
            report.missing += [f"{pool}/{v}" for v in sorted(versions) if not (self.root / pool / v).is_dir()]
        return report


def open_registry(settings: Settings) -> AdapterRegistry:
    """The adapter registry of this data folder; runs `recover()` first."""
    return AdapterRegistry(settings)
