"""Reading one file into a `Document`: its kind, its title, and its structural sections.

Markdown (and reStructuredText and HTML, turned into Markdown headings) is cut at headings by LlamaIndex's
`MarkdownNodeParser`; PDF pages come from LlamaIndex's `PDFReader` (pypdf); Python is cut at top-level definitions
with `ast`; JSON, JSON Lines, CSV, logs and chat exports become record- or line-oriented sections. This module does
not size chunks (see `indexes.chunking`) and does not embed.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexes.files import decode, looks_binary
from indexes.records import Document, Kind, Section


class SkipFile(Exception):
    """Nothing to index in this file (no text); reported as skipped, not failed. `code`: see records.ISSUE_CODES."""

    def __init__(self, message: str, code: str = "no_text"):
        super().__init__(message)
        self.code = code


class ReadError(Exception):
    """The file cannot be read as its kind (corrupt, invalid); reported as failed with this message and `code`."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


EXTENSIONS: dict[str, Kind] = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".rst": "rst", ".rest": "rst",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".csv": "csv", ".tsv": "csv",
    ".txt": "text", ".text": "text",
    ".log": "log", ".out": "log", ".err": "log",
}
CODE_EXTENSIONS = frozenset(
    [".py", ".pyi", ".js", ".jsx", ".mjs", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".kts", ".scala", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".cs", ".rb", ".php", ".swift", ".m", ".mm", ".r", ".jl", ".lua", ".pl", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml", ".proto", ".graphql", ".tf", ".hcl", ".gradle", ".cmake", ".el", ".clj", ".ex", ".exs", ".erl", ".hs", ".ml", ".dart", ".vue", ".svelte", ".css", ".scss", ".sass", ".less"])
CODE_NAMES = frozenset({"Dockerfile", "Makefile", "Containerfile", "Jenkinsfile", "CMakeLists.txt", "Rakefile"})
MAX_TITLE_CHARS = 200
_ROTATED_LOG = re.compile(r"\.log\.\d+$")
# Lines starting with a date or time: 2024-01-02, 02/01/2024, [12:00:01], Jan  2 10:00:00
_LOG_LINE = re.compile(
    r"^\W{0,2}(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{2}:\d{2}:\d{2}|[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2})")
# WhatsApp / Signal style exports: "12/31/21, 10:15 PM - Alice: hi" or "[31.12.21, 22:15:03] Alice: hi"
_CHAT_LINE = re.compile(r"^\[?\d{1,4}[./-]\d{1,2}[./-]\d{2,4},? \d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?\]?(?: -)? [^:\n]{1,60}: ")
_SPEAKER_KEYS = ("role", "author", "sender", "from", "user", "speaker", "name", "username", "user_name")
_TEXT_KEYS = ("content", "text", "message", "body")
_TIME_KEYS = ("timestamp", "ts", "date", "time", "create_time", "created_at")


def detect_kind(path: str, head: bytes) -> Kind | None:
    """The file's kind from its name (then its first bytes); None for binary or unsupported files."""
    name = os.path.basename(path)
    ext = os.path.splitext(name)[1].lower()
    if ext == ".pdf" or head.startswith(b"%PDF-"):
        return "pdf"
    if looks_binary(head):
        return None
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if ext in CODE_EXTENSIONS or name in CODE_NAMES:
        return "code"
    if _ROTATED_LOG.search(name):
        return "log"
    return "text"


def read_document(path: str, data: bytes) -> Document:
    kind = detect_kind(path, data[:8192])
    if kind is None:
        raise SkipFile(f"binary file ({os.path.splitext(path)[1] or 'no extension'}; not a supported format)",
                       "binary")
    name = os.path.basename(path)
    if kind == "pdf":
        return _without_surrogates(_pdf(path, name))
    try:
        text, note = decode(data)
    except ValueError as exc:
        raise SkipFile(str(exc), "binary") from None
    if not text.strip():
        raise SkipFile("empty file (no text)", "empty")
    if kind == "text":  # plain text may really be a log or a chat export
        lines = [ln for ln in text.split("\n")[:40] if ln.strip()]
        if lines and sum(bool(_CHAT_LINE.match(ln)) for ln in lines) >= 0.6 * len(lines):
            kind = "chat"
        elif lines and sum(bool(_LOG_LINE.match(ln)) for ln in lines) >= 0.6 * len(lines):
            kind = "log"
    reader = _READERS[kind]
    doc = _without_surrogates(reader(text, name))
    doc.title = doc.title[:MAX_TITLE_CHARS]  # stored with every chunk: a 300 KB <title> would be copied into each
    if note:
        doc.note = note if not doc.note else f"{doc.note}; {note}"
    if not any(s.text.strip() for s in doc.sections):
        raise SkipFile("no text to index (only headings or empty records)")
    return doc


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(doc: Document) -> Document:
    """Lone UTF-16 surrogates (from JSON escapes such as "\\ud800") become U+FFFD: no UTF-8 can hold them, so the
    tokenizer and Chroma would refuse the whole file."""
    def fix(s: str) -> str:
        return _SURROGATE.sub("\ufffd", s)

    doc.title = fix(doc.title)
    for sec in doc.sections:
        sec.text, sec.section, sec.prefix = fix(sec.text), fix(sec.section), fix(sec.prefix)
        sec.units = None if sec.units is None else [fix(u) for u in sec.units]
        sec.labels = {k: fix(v) for k, v in sec.labels.items()}
    return doc


# --- Markdown family -----------------------------------------------------------------------------------------------

def _markdown(text: str, name: str, title: str | None = None) -> Document:
    from llama_index.core import Document as LIDocument
    from llama_index.core.node_parser import MarkdownNodeParser

    body, fm_title = _strip_front_matter(text)
    offset_lines = text[: len(text) - len(body)].count("\n")
    parser = MarkdownNodeParser(include_prev_next_rel=False, header_path_separator="\x1f")
    nodes = parser.get_nodes_from_documents([LIDocument(text=body)])
    sections = []
    first_h1 = None
    for node in nodes:
        content = node.get_content()
        heading = re.match(r"^(#+)\s(.*)", content)
        parents = [p for p in node.metadata.get("header_path", "").split("\x1f") if p]
        path = parents + ([heading.group(2).strip()] if heading else [])
        if heading and len(heading.group(1)) == 1 and first_h1 is None:
            first_h1 = heading.group(2).strip()
        if heading and "\n" not in content.strip():
            continue  # a heading with nothing under it: its name lives on in its subsections' paths
        start = node.start_char_idx
        first_line = body.count("\n", 0, start) + 1 + offset_lines if start is not None else None
        sections.append(Section(text=content, section=" > ".join(path), first_line=first_line))
    return Document("markdown", title or fm_title or first_h1 or name, sections)


def _strip_front_matter(text: str) -> tuple[str, str | None]:
    if not text.startswith("---\n"):
        return text, None
    end = text.find("\n---\n", 4)
    if end < 0:
        return text, None
    title = re.search(r"^title:\s*['\"]?(.*?)['\"]?\s*$", text[4:end], re.MULTILINE)
    return text[end + 5:], title.group(1) if title else None


_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")


def _rst(text: str, name: str) -> Document:
    """Headings (a line underlined, optionally overlined, by punctuation) become Markdown headings in place.

    Levels follow the order in which adornment styles first appear, as in docutils. Line numbers are kept: the
    adornment lines become blank lines.
    """
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []
    title = None
    for i in range(len(lines) - 1):
        line, under = lines[i], lines[i + 1]
        if not line.strip() or _RST_ADORNMENT.match(line) or not _RST_ADORNMENT.match(under):
            continue
        if len(under.rstrip()) < len(line.strip()) or line.startswith(" "):
            continue
        over = i > 0 and lines[i - 1].strip() == under.strip()
        style = (under.strip()[0], over)
        if style not in styles:
            styles.append(style)
        level = styles.index(style) + 1
        title = title or line.strip()
        lines[i] = "#" * min(level, 6) + " " + line.strip()
        lines[i + 1] = ""
        if over:
            lines[i - 1] = ""
    doc = _markdown("\n".join(lines), name, title=title)
    doc.kind = "rst"
    return doc


_BLOCK_TAGS = ("p", "div", "li", "tr", "pre", "blockquote", "section", "article", "table", "ul", "ol", "dd", "dt",
               "header", "footer", "main", "aside", "figure", "figcaption", "form", "nav", "td", "th")


def _html(text: str, name: str) -> Document:
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with(NavigableString("\n"))
    for h in soup.find_all(re.compile(r"^h[1-6]$")):
        heading = h.get_text(" ", strip=True)
        title = title or heading
        h.replace_with(NavigableString(f"\n\n{'#' * int(h.name[1])} {heading}\n\n"))
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_after(NavigableString("\n"))
    lines = [re.sub(r"[ \t\xa0]+", " ", ln).strip() for ln in soup.get_text("").split("\n")]
    markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    doc = _markdown(markdown, name, title=title)
    for s in doc.sections:  # the lines are the converted text's, not the file's
        s.first_line = None
    doc.kind = "html"
    return doc


# --- PDF -------------------------------------------------------------------------------------------------------------

def _pdf(path: str, name: str) -> Document:
    from llama_index.readers.file import PDFReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken files log pages of warnings before failing
    try:
        pages = PDFReader().load_data(Path(path))
    except Exception as exc:  # noqa: BLE001  (pypdf raises many types for broken files; each is "corrupt")
        cause = exc
        last = getattr(exc, "last_attempt", None)  # PDFReader retries through tenacity; report the real error
        if last is not None and last.exception() is not None:
            cause = last.exception()
        raise ReadError(f"cannot read the PDF ({type(cause).__name__}: {str(cause)[:200]})", "invalid_pdf") from None
    sections = [Section(text=p.text, page=i + 1, section=f"page {p.metadata.get('page_label', i + 1)}")
                for i, p in enumerate(pages) if p.text and p.text.strip()]
    if not sections:
        raise SkipFile("no extractable text in the PDF (a scanned document?)")
    return Document("pdf", name, sections)


# --- Code --------------------------------------------------------------------------------------------------------

def _code(text: str, name: str) -> Document:
    lines = text.split("\n")
    section = Section(text=text, mode="lines", first_line=1)
    if name.endswith((".py", ".pyi")):
        try:
            section.breaks, section.labels = _python_definitions(text, len(lines))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: the parser's stack overflowed
            pass  # not valid Python: blank lines still give decent cut points
    return Document("code", name, [section])


def _python_definitions(text: str, n_lines: int) -> tuple[set[int], dict[int, str]]:
    """Line indexes (0-based) where a top-level statement or a class's method starts, with symbol labels ("" for
    statements that are not definitions).

    A definition's start includes its decorators and the comment lines right above it.
    """
    tree = ast.parse(text)
    lines = text.split("\n")
    breaks: set[int] = set()
    labels: dict[int, str] = {}

    def start_of(node: ast.stmt) -> int:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        return first

    for node in tree.body:
        start = start_of(node)
        breaks.add(start)
        labels[start] = ""  # module-level code: ends the symbol above it
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            labels[start] = f"def {node.name}"
        elif isinstance(node, ast.ClassDef):
            labels[start] = f"class {node.name}"
            methods = [c for c in node.body if isinstance(c, ast.FunctionDef | ast.AsyncFunctionDef)]
            for n, child in enumerate(methods):
                cstart = start_of(child)
                if n:  # the first method stays with the class line above it
                    breaks.add(cstart)
                labels[cstart] = f"{node.name}.{child.name}"
    return {b for b in breaks if 0 <= b < n_lines}, labels


# --- Records: JSON, JSON Lines, CSV, logs, chats -------------------------------------------------------------------

def _json(text: str, name: str) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReadError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "invalid_json") from None
    except RecursionError:
        raise ReadError("JSON nested too deeply to read", "too_deep") from None
    except ValueError as exc:  # not a syntax error: e.g. an integer of more than 4,300 digits
        raise ReadError(f"invalid JSON: {str(exc)[:200]}", "invalid_json") from None
    try:
        return _json_document(data, name)
    except RecursionError:  # loads() takes a little less depth than dumps() needs
        raise ReadError("JSON nested too deeply to index", "too_deep") from None


def _json_document(data: Any, name: str) -> Document:
    chats = _chat_sections(data)
    if chats:
        return Document("chat", name, chats)
    if isinstance(data, list):
        return Document("json", name, [_records(data, "$")])
    if isinstance(data, dict):
        sections, scalars = [], {}
        for key, value in data.items():
            if isinstance(value, list):
                sections.append(_records(value, str(key)))
            elif isinstance(value, dict):
                body = json.dumps(value, ensure_ascii=False, indent=1)
                sections.append(Section(text=body, section=str(key), mode="lines", unit=""))
            else:
                scalars[key] = value
        if scalars:
            units = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in scalars.items()]
            sections.insert(0, Section(text="\n".join(units), section="$", mode="lines", unit=""))
        return Document("json", name, sections)
    return Document("json", name, [Section(text=json.dumps(data, ensure_ascii=False))])


def _records(items: list[Any], where: str) -> Section:
    units = [json.dumps(item, ensure_ascii=False) for item in items]
    return Section(text="\n".join(units), section=where, mode="lines", units=units, unit="item")


def _jsonl(text: str, name: str) -> Document:
    lines = text.split("\n")
    records, bad = [], 0
    for line in lines:
        if line.strip():
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError):  # ValueError includes JSONDecodeError
                bad += 1
    if not records:
        raise ReadError("no line is valid JSON (not a JSON Lines file)", "invalid_jsonl")
    if sum(_message(r) is not None for r in records) >= 0.8 * len(records):
        units = [_message_line(m) if (m := _message(_loads(ln))) else ln for ln in lines]
        doc = Document("chat", name, [Section(text="\n".join(units), mode="lines", first_line=1, units=units)])
    else:
        doc = Document("jsonl", name, [Section(text=text, mode="lines", first_line=1)])
    if bad:
        doc.note = f"{bad} line(s) are not valid JSON; indexed as text"
    return doc


def _loads(line: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _csv(text: str, name: str) -> Document:
    """Each chunk repeats the header row, so every chunk says what its columns are."""
    dialect = "excel-tab" if name.lower().endswith(".tsv") else "excel"
    physical = text.split("\n")
    reader = csv.reader(io.StringIO(text), dialect=dialect)
    try:
        next(reader)
        header_lines = reader.line_num
        units, prev = [], header_lines
        for _ in reader:  # a quoted field may span lines: keep each record whole
            units.append("\n".join(physical[prev:reader.line_num]))
            prev = reader.line_num
    except (csv.Error, StopIteration) as exc:
        raise ReadError(f"invalid CSV: {exc}", "invalid_csv") from None
    header = "\n".join(physical[:header_lines])
    return Document("csv", name, [Section(text="\n".join(units), mode="lines", first_line=header_lines + 1,
                                          units=units, prefix=header)])


def _lines(kind: Kind):
    def read(text: str, name: str) -> Document:
        return Document(kind, name, [Section(text=text, mode="lines", first_line=1)])
    return read


def _text(text: str, name: str) -> Document:
    return Document("text", name, [Section(text=text, first_line=1)])


def _message(obj: Any) -> tuple[str, str, str] | None:
    """(speaker, text, time) when `obj` looks like one chat message, else None."""
    if not isinstance(obj, dict):
        return None
    speaker = next((obj[k] for k in _SPEAKER_KEYS if obj.get(k)), None)
    if isinstance(speaker, dict):
        speaker = speaker.get("name") or speaker.get("role") or speaker.get("username")
    body = next((obj[k] for k in _TEXT_KEYS if k in obj), None)
    if isinstance(body, dict):  # ChatGPT: {"content_type": "text", "parts": [...]}
        body = body.get("parts") or body.get("text")
    if isinstance(body, list):  # Telegram / ChatGPT parts: strings or {"text": ...}
        body = "".join(p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else "" for p in body)
    if not isinstance(speaker, str) or not isinstance(body, str):
        return None
    when = next((obj[k] for k in _TIME_KEYS if obj.get(k) not in (None, "")), "")
    return speaker, body, _when(when)


def _seconds(value: Any) -> float:
    """A message time as a number to sort by (0 when it is not one: exports mix numbers, strings and nulls)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def _when(value: Any) -> str:
    """Epoch seconds (ChatGPT, Slack) as a readable UTC time; anything else as given."""
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d{9,11}(\.\d+)?", value)):
        try:
            return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            pass
    return str(value)


def _message_line(m: tuple[str, str, str] | None) -> str:
    speaker, body, when = m or ("", "", "")
    return f"[{when}] {speaker}: {body}" if when else f"{speaker}: {body}"


def _chat_sections(data: Any) -> list[Section] | None:
    """Sections for the chat exports we know (ChatGPT, Slack/Discord/Telegram-style message lists), else None."""
    conversations: list[tuple[str, list[tuple[str, str, str]]]] = []
    items = data if isinstance(data, list) else [data]
    if items and all(isinstance(c, dict) and isinstance(c.get("mapping"), dict) for c in items):
        for conv in items:  # ChatGPT conversations.json
            nodes = [n.get("message") for n in conv["mapping"].values() if isinstance(n, dict)]
            msgs = sorted((n for n in nodes if isinstance(n, dict)), key=lambda n: _seconds(n.get("create_time")))
            parsed = [m for m in (_message(n) for n in msgs) if m and m[1].strip()]
            conversations.append((str(conv.get("title") or "conversation"), parsed))
    elif isinstance(data, dict) and isinstance(data.get("messages"), list):
        parsed = [m for m in (_message(x) for x in data["messages"]) if m]
        if len(parsed) < 0.8 * max(1, len(data["messages"])):
            return None
        conversations.append((str(data.get("name") or data.get("title") or ""), parsed))
    elif isinstance(data, list) and data:
        parsed = [m for m in (_message(x) for x in data) if m]
        if len(parsed) < 0.8 * len(data):
            return None
        conversations.append(("", parsed))
    else:
        return None
    sections = []
    for title, msgs in conversations:
        units = [_message_line(m) for m in msgs]
        if units:
            sections.append(Section(text="\n".join(units), section=title, mode="lines", units=units, unit="message"))
    return sections or None


_READERS = {
    "markdown": _markdown, "rst": _rst, "html": _html, "code": _code, "json": _json, "jsonl": _jsonl,
    "csv": _csv, "text": _text, "log": _lines("log"), "chat": _lines("chat"),
}
