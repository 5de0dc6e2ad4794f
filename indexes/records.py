"""Typed records of the knowledge index: sections, chunks, hits, sources, ingest reports and progress.

Plain dataclasses with one serializer each (`to_dict`, JSON-ready), and `ingest_counts`, a report summed up as
counts. This module holds no logic beyond that: it does not read files, embed or talk to Chroma.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["markdown", "rst", "html", "pdf", "code", "json", "jsonl", "csv", "text", "log", "chat"]
# What a Section's units are: prose is split by sentences; the others are packed whole, one unit per line.
Mode = Literal["prose", "lines"]
Scalar = str | int | float | bool


@dataclass
class Section:
    """A structural piece of one source (a heading's section, a PDF page, a Python definition, a CSV file).

    `first_line` is the 1-based file line of `text`'s first line (or first unit), or None where lines do not map
    onto the file (PDF, HTML, JSON). `prefix` is repeated at the top of every chunk cut from it (a CSV header).
    """

    text: str
    section: str = ""
    mode: Mode = "prose"
    first_line: int | None = None
    page: int | None = None
    prefix: str = ""
    # Lines mode only: the units packed whole into chunks (default: the text's lines), what one unit is ("line":
    # file lines, so chunks get line_start/line_end; "item"/"message": chunks get item_start/message_start...;
    # "": no range), preferred chunk starts, and the symbol starting at a unit.
    units: list[str] | None = None
    unit: str = "line"
    breaks: set[int] = field(default_factory=set)
    labels: dict[int, str] = field(default_factory=dict)


@dataclass
class Document:
    """One decoded source file, split into sections; `note` says how it was read when that is worth knowing."""

    kind: Kind
    title: str
    sections: list[Section]
    note: str | None = None


@dataclass
class Chunk:
    """What goes into Chroma: `text` is stored and shown, `embed_text` (title/section header + text) is embedded."""

    id: str
    text: str
    embed_text: str
    metadata: dict[str, Scalar]


@dataclass(frozen=True)
class FileIssue:
    """A file that was skipped (nothing to do: empty, binary, too big, hidden link) or failed (could not be read).

    `reason` is for people; `code` names the kind of problem for counting (see `ISSUE_CODES`).
    """

    path: str
    reason: str
    code: str = "other"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "code": self.code}


# What each FileIssue code means. "unexpected" is an error no reader named: a bug to report, never a clean failure.
ISSUE_CODES = {
    "empty": "empty file, or only whitespace",
    "no_text": "nothing to index (only headings, empty records, a PDF without text)",
    "binary": "binary or unsupported format",
    "too_large": "over max_file_bytes",
    "not_regular": "a FIFO, socket or device",
    "bad_name": "a file name that cannot be stored (control characters, not UTF-8)",
    "outside": "a symlink leading outside the ingested folders (not followed)",
    "broken_link": "a symlink whose target does not exist",
    "link_loop": "a symlink loop",
    "missing": "a given path that does not exist",
    "permission": "permission denied",
    "unreadable": "another operating-system error while listing, examining or reading",
    "invalid_pdf": "a PDF pypdf cannot read",
    "invalid_json": "invalid JSON",
    "invalid_jsonl": "no line is valid JSON",
    "invalid_csv": "invalid CSV",
    "too_deep": "nested too deeply to parse",
    "unexpected": "an error no reader named (a bug)",
    "other": "not classified",
    "warning": "ingested, with a note (e.g. decoded as cp1252, some JSON Lines invalid)",
}


@dataclass
class IngestReport:
    """What one `ingest` call did. `files` counts files (re)ingested; `unchanged` those already up to date."""

    pool: str
    files: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: list[FileIssue] = field(default_factory=list)
    failed: list[FileIssue] = field(default_factory=list)
    warnings: list[FileIssue] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "files": self.files,
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "unchanged": self.unchanged,
            "skipped": [i.to_dict() for i in self.skipped],
            "failed": [i.to_dict() for i in self.failed],
            "warnings": [i.to_dict() for i in self.warnings],
            "pruned": list(self.pruned),
            "seconds": round(self.seconds, 3),
        }


def ingest_counts(report: IngestReport) -> dict[str, Any]:
    """How one ingest went, as counts: every entry it met is counted once.

    `tried` = `ingested` (read and indexed now) + `unchanged` (already indexed) + `skipped` + `failed`;
    `skipped_by` and `failed_by` count entries per `FileIssue.code`; `unexpected` is the number of failures no
    reader named (code "unexpected"), so `failed - unexpected` failed cleanly. Folders that could not be listed
    count as one failed entry each (their contents were never seen).
    """
    skipped = Counter(i.code for i in report.skipped)
    failed = Counter(i.code for i in report.failed)
    return {
        "tried": report.files + report.unchanged + len(report.skipped) + len(report.failed),
        "ingested": report.files,
        "unchanged": report.unchanged,
        "skipped": len(report.skipped),
        "failed": len(report.failed),
        "unexpected": failed.get("unexpected", 0),
        "warnings": len(report.warnings),
        "chunks_added": report.chunks_added,
        "chunks_removed": report.chunks_removed,
        "skipped_by": dict(sorted(skipped.items())),
        "failed_by": dict(sorted(failed.items())),
        "seconds": round(report.seconds, 3),
    }


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. `score` is cosine similarity clipped to [0, 1]: higher is more relevant."""

    text: str
    score: float
    source: str
    pool: str
    chunk_id: str
    title: str = ""
    section: str = ""
    kind: str = ""
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    metadata: dict[str, Scalar] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SourceInfo:
    """One ingested source file of a pool, as the manifest records it."""

    path: str
    pool: str
    kind: str
    title: str
    content_hash: str
    chunks: int
    ingested_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IngestProgress:
    """Sent to a progress callback after each file; `files_total` is known once the folders are walked."""

    files_done: int
    files_total: int
    chunks_done: int
    path: str
    elapsed: float
