"""Property tests of reading and chunking: arbitrary text and bytes.

The chunker never loses text and keeps it in order (whitespace aside), keeps every chunk within the token budget
and the character cap, reports line ranges that hold the chunk, and is deterministic. The readers, given any bytes
under any supported name, either return a document or raise one of the two named errors (SkipFile, ReadError)
that the ingester reports with a reason code: anything else would be reported as "unexpected".
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from indexes.chunking import MAX_CHARS_PER_TOKEN, Chunker, cap_chars, pack
from indexes.readers import CODE_EXTENSIONS, EXTENSIONS, ReadError, SkipFile, read_document
from indexes.records import ISSUE_CODES, Document, Section

PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def words(texts):
    """Whitespace words, like the tokenizer reads a word over 100 characters as one [UNK]."""
    return [len(t.split()) for t in texts]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé0123456789", min_size=1, max_size=12)
long_word = st.integers(60, 3000).map(lambda n: "0123456789abcdef" * (n // 16) + "x")
punct = st.sampled_from([".", ",", "!", "?", ";", ":", "-", "(", ")", '"', "\u3002"])
space = st.sampled_from([" ", " ", " ", "\n", "\n\n", "\t", "  "])
token = st.one_of(word, word, word, word, long_word, punct, space)
texts = st.lists(token, max_size=400).map(" ".join)
chunkers = st.builds(
    lambda window, size, overlap: Chunker(words, max_tokens=window, chunk_size=size, chunk_overlap=overlap),
    st.integers(24, 160), st.integers(16, 200), st.sampled_from([0, 0, 4, 16]))
titles = st.text(alphabet="abc XYZ", max_size=12)


def covers_in_order(whole: str, parts: list[str]) -> bool:
    """The parts, found left to right in `whole` (each may overlap the one before it), leave no gap."""
    start, covered = 0, 0
    for part in parts:
        at = whole.find(part, start)
        if at < 0 or at > covered:
            return False
        start, covered = at, max(covered, at + len(part))
    return covered == len(whole)


def check_sizes(c: Chunker, pieces) -> None:
    for p in pieces:
        assert words([p.embed_text])[0] <= c.budget, (c.budget, p.embed_text[:200])
        assert len(p.text) <= c.budget * MAX_CHARS_PER_TOKEN, len(p.text)
        assert p.text.strip()


@PROPERTY
@given(c=chunkers, text=texts, title=titles)
def test_prose_chunks_cover_the_text_in_order_within_bounds(c, text, title):
    c.overlap = 0
    doc = Document("text", title, [Section(text=text, first_line=1)])
    pieces = c.chunk(doc)
    check_sizes(c, pieces)
    assert "".join(squeeze(p.text) for p in pieces) == squeeze(text)  # nothing lost or repeated, in order
    assert [(p.text, p.metadata) for p in c.chunk(doc)] == [(p.text, p.metadata) for p in pieces]  # deterministic
    again = Chunker(words, max_tokens=c.budget + 2, chunk_size=c.budget, chunk_overlap=0)
    assert [p.text for p in again.chunk(doc)] == [p.text for p in pieces]


@PROPERTY
@given(c=chunkers, seps=st.lists(st.one_of(punct, space), max_size=300), overlap=st.integers(1, 40))
def test_overlapping_prose_chunks_leave_no_gap(c, seps, overlap):
    c.overlap = overlap
    # Numbered words, so every chunk has exactly one place in the text.
    text = " ".join(f"w{i}{sep}" for i, sep in enumerate(seps))
    pieces = c.chunk(Document("text", "t", [Section(text=text, first_line=1)]))
    check_sizes(c, pieces)
    assert covers_in_order(squeeze(text), [squeeze(p.text) for p in pieces])


@PROPERTY
@given(c=chunkers, lines=st.lists(st.lists(token.filter(lambda t: "\n" not in t), max_size=30).map(" ".join),
                                   max_size=120), title=titles, prefix=st.sampled_from(["", "id,name,value"]))
def test_line_chunks_keep_lines_whole_and_in_order(c, lines, title, prefix):
    text = "\n".join(lines)
    doc = Document("code", title, [Section(text=text, mode="lines", first_line=1, prefix=prefix,
                                           breaks={i for i, ln in enumerate(lines) if ln.startswith("a")})])
    pieces = c.chunk(doc)
    check_sizes(c, pieces)
    bodies = [p.text[len(prefix) + 1:] if prefix else p.text for p in pieces]
    assert all(p.text.startswith(prefix) for p in pieces)
    assert "".join(squeeze(b) for b in bodies) == squeeze(text)
    for body, p in zip(bodies, pieces):
        start, end = p.metadata["line_start"], p.metadata["line_end"]
        assert 1 <= start <= end <= len(lines)
        if start < end:  # several whole lines
            assert body == "\n".join(lines[start - 1:end]).strip("\n") or squeeze(body) == squeeze(
                "\n".join(lines[start - 1:end]))
        else:  # one line, whole or a piece of it
            assert body in lines[start - 1]
    starts = [p.metadata["line_start"] for p in pieces]
    assert starts == sorted(starts)


@PROPERTY
@given(counts=st.lists(st.integers(0, 40), max_size=60), room=st.integers(8, 60),
       lengths=st.lists(st.integers(1, 400), min_size=60, max_size=60), data=st.data())
def test_pack_windows_tile_the_units(counts, room, lengths, data):
    n = len(counts)
    breaks = set(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=10)))
    blanks = set(data.draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=10)))
    windows = pack(counts, room, breaks, blanks, lengths[:n], room * 8)
    assert [i for i, _ in windows] == [0, *[j for _, j in windows[:-1]]][:len(windows)]
    assert (windows[-1][1] if windows else 0) == n
    for i, j in windows:
        assert j > i
        if j - i > 1:
            assert sum(counts[i:j]) <= room and sum(lengths[i:j]) <= room * 8


@PROPERTY
@given(parts=st.lists(texts, max_size=4), limit=st.integers(1, 300))
def test_cap_chars_only_cuts(parts, limit):
    out = cap_chars(parts, limit)
    assert "".join(out) == "".join(parts) and all(len(p) <= limit for p in out)


# -- readers: any bytes, any supported name -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["role", "content", "text", "user", "messages", "mapping", "title", "ts", "k"]) | st.text(
            max_size=5), inner, max_size=4), max_leaves=15)
times = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12)
speakers = st.sampled_from(["user", "assistant"]) | st.none() | st.integers() | st.fixed_dictionaries(
    {"name": st.text(max_size=6) | st.none()})
bodies = st.text(max_size=20) | st.none() | st.lists(st.text(max_size=6) | st.integers()
                                                     | st.fixed_dictionaries({"text": st.text(max_size=6)}), max_size=3)
chatgpt = st.lists(st.fixed_dictionaries({"title": st.text(max_size=8) | st.none(), "mapping": st.dictionaries(
    st.text(max_size=4), st.fixed_dictionaries({"message": st.none() | st.fixed_dictionaries(
        {"author": st.fixed_dictionaries({"role": speakers}), "content": st.fixed_dictionaries({"parts": bodies}),
         "create_time": times})}), max_size=4)}), min_size=1, max_size=2)
messages = st.lists(st.fixed_dictionaries({"role": speakers, "content": bodies, "ts": times}), min_size=1, max_size=5)
big_int = st.integers(4301, 5000).map(lambda n: "7" * n)  # over Python's int-to-str digit limit
json_texts = st.one_of(
    json_values.map(json.dumps),
    chatgpt.map(json.dumps),
    messages.map(json.dumps),
    st.fixed_dictionaries({"name": st.text(max_size=5), "messages": messages}).map(json.dumps),
    st.lists(json_values.map(json.dumps) | messages.map(json.dumps) | big_int, max_size=6).map("\n".join),
    big_int.map(lambda digits: f"[{digits}]"),
)
structured = st.one_of(
    json_texts,
    st.lists(st.lists(st.text(alphabet='ab,"\n x', max_size=8), max_size=4).map(",".join), max_size=8).map("\n".join),
    st.lists(st.sampled_from(["# Title", "## Sub", "<h1>", "</p>", "<p>", "text here.", "===", "----", "```",
                              "> quote", "* item", "def f():", "    return 1", "class A:", "1/2/24, 10:00 - A: hi",
                              "2024-01-01 10:00:00 INFO x", "&amp;", "<script>x</script>", "[", "{", "\ud800"]),
             max_size=30).map("\n".join),
)
names = st.sampled_from(sorted(set(EXTENSIONS) - {".pdf"}) + sorted(CODE_EXTENSIONS)[:12] + ["", ".bin", ".log.1"])
payloads = st.one_of(
    structured.map(lambda s: s.encode("utf-8", "surrogatepass")),
    structured.map(lambda s: s.encode("utf-16", "surrogatepass")),
    st.binary(max_size=600),
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(named=st.tuples(st.sampled_from([".json", ".jsonl", ".ndjson"]),
                       json_texts.map(lambda s: s.encode("utf-8", "surrogatepass")))
       | st.tuples(names, payloads))
# Inputs that once escaped as unnamed errors (reported as "unexpected"), or broke the tokenizer.
@example((".json", b"[" + b"7" * 4400 + b"]"))  # ValueError: over Python's 4,300-digit limit
@example((".jsonl", b'{"a": 1}\n' + b"7" * 4400 + b"\n"))
@example((".json", b"[" * 5000 + b"]" * 5000))  # RecursionError
@example((".jsonl", b'{"a": 1}\n' + b"[" * 5000 + b"]" * 5000 + b"\n"))
@example((".json", json.dumps([{"mapping": {  # TypeError: ChatGPT times of mixed types could not be sorted
    "a": {"message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}, "create_time": "soon"}},
    "b": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["yo"]}, "create_time": 5}}}}]).encode()))
@example((".json", b'{"note": "a lone \\ud800 surrogate"}'))  # TypeError in the tokenizer
@example((".py", b"x = " + b"-" * 8000 + b"1\n"))  # MemoryError from ast.parse
def test_readers_fail_only_with_named_errors(named):
    ext, data = named
    try:
        doc = read_document(f"/d/file{ext}", data)
    except (SkipFile, ReadError) as exc:
        assert str(exc) and exc.code in ISSUE_CODES
        return
    c = Chunker(words, max_tokens=64, chunk_size=64, chunk_overlap=8)
    pieces = c.chunk(doc)
    check_sizes(c, pieces)
    for p in pieces:  # storable: UTF-8 all through, metadata bounded
        p.text.encode("utf-8")
        p.embed_text.encode("utf-8")
        assert all(len(str(v)) <= 4096 for v in p.metadata.values())
