"""Cutting a `Document`'s sections into chunks that fit the embedding model, with their metadata.

Prose is split by sentences with LlamaIndex's `SentenceSplitter`; line-oriented sections (code, logs, CSV, JSON
records, chats) are packed whole unit by unit, cutting preferably at definitions, then at blank lines. Sizes are
counted in the embedding model's own tokens and capped at its window, since text past it would not be embedded.
This module does not read files, embed or store anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from indexes.records import Document, Scalar, Section

CountTokens = Callable[[Sequence[str]], list[int]]
# Bump when chunk boundaries or embedded text change: every source is then re-ingested once.
# v2: chunks capped in characters too (MAX_CHARS_PER_TOKEN), long CSV headers cut, titles and sections clipped.
CHUNKER_VERSION = 2
MAX_HEADER_CHARS = 200
# A chunk holds at most this many characters per token of room. Tokens alone do not bound a chunk's length: the
# tokenizer reads any word over 100 characters as one [UNK], so a 1 MB line of hex or base64 counted as one token
# and became one 1 MB chunk. Prose and code run at 3 to 6 characters per token, so this only cuts such text.
MAX_CHARS_PER_TOKEN = 8


@dataclass(frozen=True)
class Piece:
    """A chunk before it has an id: stored text, embedded text, and its place in the source."""

    text: str
    embed_text: str
    metadata: dict[str, Scalar]


class Chunker:
    def __init__(self, count_tokens: CountTokens, max_tokens: int, chunk_size: int, chunk_overlap: int):
        # 2 tokens for [CLS]/[SEP]; a larger chunk_size setting cannot buy more than the model reads.
        self.budget = max(16, min(chunk_size, max_tokens - 2))
        self.overlap = chunk_overlap
        self._count = count_tokens

    @property
    def config_key(self) -> str:
        return f"v{CHUNKER_VERSION}:budget={self.budget}:overlap={self.overlap}"

    def chunk(self, doc: Document) -> list[Piece]:
        pieces: list[Piece] = []
        for section in doc.sections:
            header = _header(doc.title, section.section)
            room = max(8, self.budget - self._count([header])[0] - 1)
            if section.mode == "prose":
                pieces.extend(self._prose(doc, section, room))
            else:
                pieces.extend(self._lines(doc, section, room))
        return pieces

    # -- prose -------------------------------------------------------------------------------------------------------

    def _split_sentences(self, text: str, room: int, overlap: int) -> list[str]:
        return _sentence_splitter(room, min(overlap, room // 4), self._count_one).split_text(text)

    def _count_one(self, text: str) -> list[int]:
        return [0] * self._count([text])[0]  # SentenceSplitter only takes len() of what the tokenizer returns

    def _prose(self, doc: Document, section: Section, room: int) -> list[Piece]:
        text, limit = section.text, room * MAX_CHARS_PER_TOKEN
        if len(text) <= limit and self._count([text])[0] <= room:
            parts = [text.strip()]
        else:
            parts = cap_chars(self._split_sentences(text, room, self.overlap), limit)
        out, cursor = [], 0
        for part in parts:
            if not part.strip():
                continue
            meta: dict[str, Scalar] = {}
            if section.first_line is not None:
                # Splitter output is a substring of the section: find it to report its lines.
                at = text.find(part[:200], cursor)
                if at >= 0:
                    cursor = at + 1
                    start = section.first_line + text.count("\n", 0, at)
                    meta.update(line_start=start, line_end=start + part.count("\n"))
            out.append(self._piece(doc, section, section.section, part, meta))
        return out

    # -- lines -------------------------------------------------------------------------------------------------------

    def _lines(self, doc: Document, section: Section, room: int) -> list[Piece]:
        units = section.units if section.units is not None else section.text.split("\n")
        if not units:
            return []
        prefix = self._short_prefix(section.prefix, room)
        limit = room * MAX_CHARS_PER_TOKEN - (len(prefix) + 1 if prefix else 0)  # the prefix takes half at most
        prefix_tokens = self._count([prefix])[0] + 1 if prefix else 0
        room = max(8, room - prefix_tokens)
        counts = self._count(units)
        # Start line of every unit (a unit may hold several lines, e.g. a quoted CSV field).
        starts, line = [], section.first_line or 1
        for u in units:
            starts.append(line)
            line += u.count("\n") + 1
        blanks = {i for i in range(1, len(units)) if not units[i - 1].strip()}
        out = []
        for i, j in pack(counts, room, section.breaks, blanks, [len(u) + 1 for u in units], limit):
            while i < j and not units[i].strip():
                i += 1
            while j > i and not units[j - 1].strip():
                j -= 1
            if i == j:
                continue
            label = self._label(section, i, j)
            meta: dict[str, Scalar] = {}
            if section.unit == "line" and section.first_line is not None:
                meta.update(line_start=starts[i], line_end=starts[j - 1] + units[j - 1].count("\n"))
            elif section.unit and section.unit != "line":
                meta.update({f"{section.unit}_start": i, f"{section.unit}_end": j - 1})
            body = "\n".join(units[i:j])
            if j - i > 1 or (counts[i] <= room and len(body) <= limit):
                texts = [body]
            else:  # one unit too long for a chunk
                texts = cap_chars(self._split_sentences(body, room, 0), limit)
            for text in texts:
                full = f"{prefix}\n{text}" if prefix else text
                out.append(self._piece(doc, section, label, full, dict(meta)))
        return out

    def _short_prefix(self, prefix: str, room: int) -> str:
        """The text repeated at the top of every chunk (a CSV header), cut to half the room at most: a header of
        thousands of columns would otherwise leave 8 tokens per chunk and be copied into each of them."""
        half = room // 2
        prefix = prefix[: half * MAX_CHARS_PER_TOKEN]
        while prefix and self._count([prefix])[0] > half:
            prefix = prefix[: len(prefix) * 3 // 4]
        return prefix

    @staticmethod
    def _label(section: Section, i: int, j: int) -> str:
        """The section name plus the symbols starting in units [i, j), led by the one the chunk starts inside of."""
        if not section.labels:
            return section.section
        names = [section.labels[k] for k in sorted(section.labels) if i <= k < j and section.labels[k]]
        enclosing = max((k for k in section.labels if k <= i), default=None)
        if enclosing is not None and enclosing < i and section.labels[enclosing]:
            names.insert(0, section.labels[enclosing])
        text = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return " > ".join(p for p in (section.section, text) if p)

    def _piece(self, doc: Document, section: Section, label: str, text: str, meta: dict[str, Scalar]) -> Piece:
        meta.update(kind=doc.kind, title=doc.title[:MAX_HEADER_CHARS], section=label[:MAX_HEADER_CHARS])
        if section.page is not None:
            meta["page"] = section.page
        return Piece(text=text, embed_text=f"{_header(doc.title, label)}\n{text}", metadata=meta)


def pack(counts: Sequence[int], room: int, breaks: set[int], blanks: set[int],
         lengths: Sequence[int] | None = None, max_length: int | None = None) -> list[tuple[int, int]]:
    """Greedy windows [i, j) of whole units within `room` tokens (and `max_length` characters, when `lengths`
    gives each unit's).

    When a window overflows it is cut back to the last preferred start (a definition, else after a blank line) in
    its second half, so a function or paragraph is not split if a nearby cut keeps it whole. A single unit larger
    than `room` (or `max_length`) becomes its own window (the caller splits it by sentences).
    """
    ranges, i, n = [], 0, len(counts)
    sized = lengths is not None and max_length is not None
    while i < n:
        total, chars, j = 0, 0, i
        while j < n and total + counts[j] <= room and (not sized or chars + lengths[j] <= max_length):
            total += counts[j]
            chars += lengths[j] if sized else 0
            j += 1
        if j == i:
            ranges.append((i, i + 1))
            i += 1
            continue
        if j < n and j not in breaks:
            half = i + max(1, (j - i) // 2)
            cut = next((b for b in range(j - 1, half - 1, -1) if b in breaks), None)
            if cut is None:
                cut = next((b for b in range(j - 1, half - 1, -1) if b in blanks), None)
            if cut is not None and cut > i:
                j = cut
        ranges.append((i, j))
        i = j
    return ranges


def cap_chars(parts: Sequence[str], limit: int) -> list[str]:
    """The parts, those longer than `limit` characters cut into pieces of at most `limit` (after the last
    whitespace in a piece's second half, if there is one there). Nothing is dropped: the pieces of a part join
    back into it."""
    out = []
    for part in parts:
        while len(part) > limit:
            cut = max(part.rfind(" ", limit // 2, limit), part.rfind("\n", limit // 2, limit)) + 1 or limit
            out.append(part[:cut])
            part = part[cut:]
        out.append(part)
    return out


def _header(title: str, section: str) -> str:
    header = f"{title} > {section}" if section else title
    return header[:MAX_HEADER_CHARS]


@lru_cache(maxsize=64)
def _sentence_splitter(room: int, overlap: int, count_one: Callable[[str], list[int]]):
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=room, chunk_overlap=overlap, tokenizer=count_one)
