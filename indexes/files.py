"""Finding the files to ingest under the given paths, and decoding their bytes as text.

`walk` expands files and folders into regular files, skipping hidden entries and tool folders, special files
(FIFOs, sockets), empty and oversized files, names that cannot be stored, and symlinks that lead outside the given
folders; every skip gets one (path, reason, code) record. `decode` reads bytes as UTF-8 with a stated fallback. This
module does not parse file formats (see `indexes.readers`).
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from indexes.records import FileIssue

# Folders of tools and dependencies, never someone's knowledge. Hidden names (.git, .venv, .env) are skipped too.
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})


@dataclass(frozen=True)
class Candidate:
    """A regular file to ingest: `path` is its real, absolute path (the source's identity in the index)."""

    path: str
    size: int


@dataclass
class WalkResult:
    files: list[Candidate] = field(default_factory=list)
    skipped: list[FileIssue] = field(default_factory=list)
    failed: list[FileIssue] = field(default_factory=list)
    # Every real file path met under the roots, whatever became of it: pruning only removes sources not in here.
    present: set[str] = field(default_factory=set)
    roots: list[str] = field(default_factory=list)


def walk(paths: Iterable[str | os.PathLike[str]], max_bytes: int) -> WalkResult:
    result = WalkResult()
    given: list[tuple[str, str]] = []  # (shown path, real path)
    for p in paths:
        shown = os.path.abspath(os.fspath(p))
        if os.path.islink(shown) and not os.path.exists(shown):
            result.failed.append(_dead_link(shown))
            result.roots.append(shown)
            continue
        if not os.path.exists(shown):
            result.failed.append(FileIssue(shown, "no such file or directory", "missing"))
            result.roots.append(shown)
            continue
        given.append((shown, os.path.realpath(shown)))
    result.roots.extend(real for _, real in given)
    seen: set[str] = set()
    visited_dirs: set[str] = set()
    for shown, real in given:
        if os.path.isdir(real):
            _walk_dir(real, result, max_bytes, seen, visited_dirs)
        elif bad_name := odd_name_reason(os.path.basename(shown)):
            result.skipped.append(FileIssue(_printable(shown), bad_name, "bad_name"))
        else:  # a file named on the command line is taken even if hidden
            _consider_file(real, shown, result, max_bytes, seen)
    return result


def _inside_roots(real: str, roots: list[str]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _walk_dir(top: str, result: WalkResult, max_bytes: int, seen: set[str], visited: set[str]) -> None:
    stack = [top]
    while stack:
        folder = stack.pop()
        if folder in visited:  # a symlink loop or a folder reached twice
            continue
        visited.add(folder)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            result.failed.append(FileIssue(folder, "permission denied (cannot list the folder)", "permission"))
            continue
        except OSError as exc:
            result.failed.append(FileIssue(folder, f"cannot list the folder: {exc.strerror or exc}", "unreadable"))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name in SKIP_DIRS:
                continue
            shown = os.path.join(folder, entry.name)
            bad_name = odd_name_reason(entry.name)
            if bad_name:
                result.skipped.append(FileIssue(_printable(shown), bad_name, "bad_name"))
                continue
            if entry.is_symlink():
                target = os.path.realpath(shown)
                if not os.path.exists(target):
                    result.skipped.append(_dead_link(shown))
                    continue
                if not _inside_roots(target, result.roots):
                    result.skipped.append(
                        FileIssue(shown, f"symlink points outside the ingested folders ({target})", "outside"))
                    continue
                if os.path.isdir(target):
                    subdirs.append(target)
                else:
                    _consider_file(target, shown, result, max_bytes, seen)
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(shown)
                    continue
            except OSError:
                pass
            _consider_file(shown, shown, result, max_bytes, seen)
        stack.extend(reversed(subdirs))


def _dead_link(shown: str) -> FileIssue:
    """A symlink whose target cannot be reached: a loop, or a target that does not exist."""
    try:
        os.stat(shown)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return FileIssue(shown, "symlink loop (it leads back to itself)", "link_loop")
    return FileIssue(shown, "broken symlink (its target does not exist)", "broken_link")


def _consider_file(real: str, shown: str, result: WalkResult, max_bytes: int, seen: set[str]) -> None:
    if real in seen:  # the same file reached through a symlink and directly
        return
    seen.add(real)
    try:
        st = os.stat(real)
    except PermissionError:
        result.failed.append(FileIssue(shown, "permission denied", "permission"))
        return
    except OSError as exc:
        result.failed.append(FileIssue(shown, f"cannot stat: {exc.strerror or exc}", "unreadable"))
        return
    if not stat.S_ISREG(st.st_mode):
        what = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        result.skipped.append(FileIssue(shown, f"not a regular file ({what})", "not_regular"))
        return
    result.present.add(real)
    if st.st_size == 0:
        result.skipped.append(FileIssue(shown, "empty file", "empty"))
    elif st.st_size > max_bytes:
        result.skipped.append(FileIssue(
            shown, f"file is {st.st_size:,} bytes, over max_file_bytes ({max_bytes:,}; raise AGENTMEM_MAX_FILE_BYTES)",
            "too_large"))
    else:
        result.files.append(Candidate(real, st.st_size))


def odd_name_reason(name: str) -> str | None:
    """Why a file name cannot be stored and shown safely, or None. Spaces and non-ASCII letters are fine."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file)"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "file name contains control characters such as a newline (rename the file)"
    return None


def _printable(path: str) -> str:
    """The path with undecodable bytes (surrogate escapes) and control characters written as escapes."""
    out = []
    for c in path:
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif not c.isprintable() or 0xD800 <= o <= 0xDFFF:
            out.append(f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}")
        else:
            out.append(c)
    return "".join(out)


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the head (images, archives, office files, UTF-16 without a BOM) mean not text."""
    if any(data.startswith(bom) for bom, _ in _BOMS):
        return False
    return b"\x00" in data[:8192]


def decode(data: bytes) -> tuple[str, str | None]:
    """Text with Unix newlines, and a note when it was not plain UTF-8 (None otherwise).

    Raises ValueError when the result is mostly control characters (binary without NUL bytes).
    """
    note = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            if codec != "utf-8-sig":
                note = f"decoded as {codec} (byte order mark)"
            break
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # cp1252 is what most non-UTF-8 text files are; latin-1 maps every byte, so it always succeeds.
            for codec in ("cp1252", "latin-1"):
                try:
                    text = data.decode(codec)
                    break
                except UnicodeDecodeError:
                    continue
            note = f"not valid UTF-8 (byte {exc.start}); decoded as {codec}, check accented characters"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sample = text[:8192]
    controls = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\n\t\f\v")
    if sample and controls / len(sample) > 0.05:
        raise ValueError("binary content (mostly control characters)")
    return text, note
