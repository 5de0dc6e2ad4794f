"""Saving uploaded files under `uploads/<pool>/` for ingestion: safe names and a size limit.

A client-supplied file name is only a hint: every path component is reduced to letters, digits, `._- `,
leading dots are dropped, `..`/absolute parts vanish, and the final path is checked to lie inside the pool's
folder, so no name can write elsewhere. Each file is streamed to a temporary file and renamed into place only
when it is complete and within `settings.max_upload_bytes`. It does not ingest (see indexes.store).
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from agentmem.errors import AgentmemError, Conflict
from agentmem.settings import Settings
from indexes.client import validate_pool

MAX_DEPTH = 8  # folder levels kept from an uploaded folder's relative paths
MAX_NAME = 120  # characters per path component (file systems allow 255 bytes; UTF-8 needs headroom)
CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^\w.\- ]+")


class UploadTooLarge(AgentmemError):
    """An uploaded file is larger than settings.max_upload_bytes."""

    exit_code = 2


def safe_component(name: str) -> str:
    name = unicodedata.normalize("NFKC", name)
    name = _UNSAFE.sub("_", name).strip(" .")  # no hidden files, no "." or "..", no trailing dots
    name = re.sub(r"_{2,}", "_", name)
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 16 else name[:MAX_NAME]
    return name


def safe_relpath(filename: str | None) -> Path:
    """A relative path made only of safe components (never empty, never absolute, never with '..')."""
    # Normalize first: a full-width solidus must split like "/" rather than survive as part of a name.
    text = unicodedata.normalize("NFKC", filename or "")
    parts = [safe_component(p) for p in re.split(r"[/\\]+", text)]
    parts = [p for p in parts if p][-MAX_DEPTH:]
    return Path(*parts) if parts else Path("upload")


def pool_folder(settings: Settings, pool: str) -> Path:
    return settings.uploads_dir / validate_pool(pool)


def destination(settings: Settings, pool: str, filename: str | None) -> Path:
    base = pool_folder(settings, pool)
    base.mkdir(parents=True, exist_ok=True)
    target = base / safe_relpath(filename)
    # Defence in depth: a symlink planted inside the folder must not carry a write outside it.
    root = base.resolve()
    if not target.parent.resolve().is_relative_to(root) or (target.is_symlink()):
        raise AgentmemError(f"refusing to write the upload {filename!r} outside {base}", "rename the file")
    # "a" and "a/b.md" cannot both be saved: one would have to be a file and a folder at once.
    folders = [p for p in target.parents if p != base and p.is_relative_to(base)]
    clash = target if target.is_dir() else next((p for p in folders if p.exists() and not p.is_dir()), None)
    if clash is not None:
        kind = "folder" if clash.is_dir() else "file"
        raise Conflict(f"cannot save the upload {filename!r}: {clash.relative_to(base)} is already a {kind} "
                       f"in {base}", "rename the file or its folder")
    return target


def save_stream(source: BinaryIO, target: Path, limit: int) -> int:
    """Copy `source` to `target` atomically; past `limit` bytes raise UploadTooLarge, leaving nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while block := source.read(CHUNK):
                size += len(block)
                if size > limit:
                    raise UploadTooLarge(
                        f"{target.name} is larger than the upload limit of {limit:,} bytes",
                        "raise AGENTMEM_MAX_UPLOAD_BYTES or split the file",
                    )
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size


def unique_names(names: Iterable[str | None]) -> list[str]:
    """Keep names of one batch apart (two folders' README.md): later ones get -2, -3, ... before the dot."""
    seen: set[Path] = set()
    out = []
    for name in names:
        rel = safe_relpath(name)
        candidate, n = rel, 1
        while candidate in seen:
            n += 1
            candidate = rel.with_name(f"{rel.stem}-{n}{rel.suffix}")
        seen.add(candidate)
        out.append(str(candidate))
    return out


def save_local_files(settings: Settings, pool: str, paths: Iterable[str | os.PathLike[str]],
                     names: Iterable[str | None] | None = None) -> list[Path]:
    """Copy files the app received (Gradio's temporary uploads) into the pool's upload folder."""
    paths = [Path(p) for p in paths]
    names = unique_names(list(names) if names is not None else [p.name for p in paths])
    saved = []
    for path, name in zip(paths, names, strict=True):
        size = path.stat().st_size
        if size > settings.max_upload_bytes:
            raise UploadTooLarge(
                f"{name} is larger than the upload limit of {settings.max_upload_bytes:,} bytes",
                "raise AGENTMEM_MAX_UPLOAD_BYTES or split the file",
            )
        target = destination(settings, pool, name)
        with open(path, "rb") as fh:
            save_stream(fh, target, settings.max_upload_bytes)
        saved.append(target)
    return saved
