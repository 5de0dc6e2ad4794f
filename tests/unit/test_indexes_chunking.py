"""Reading each kind of file into sections, and cutting sections into chunks with the right metadata."""

import json

import pytest

from indexes.chunking import MAX_CHARS_PER_TOKEN, Chunker, pack
from indexes.readers import ReadError, SkipFile, detect_kind, read_document
from tests.ingest_corpus import make_pdf


def words(texts):
    return [len(t.split()) for t in texts]


def chunker(size=60, overlap=8, window=128):
    return Chunker(words, max_tokens=window, chunk_size=size, chunk_overlap=overlap)


def lines_of(data: bytes, piece) -> str:
    """The file lines a chunk claims to come from."""
    lines = data.decode().split("\n")
    return "\n".join(lines[piece.metadata["line_start"] - 1: piece.metadata["line_end"]])


def test_chunk_budget_is_capped_by_the_model_window():
    assert Chunker(words, max_tokens=256, chunk_size=512, chunk_overlap=64).budget == 254
    assert Chunker(words, max_tokens=256, chunk_size=100, chunk_overlap=10).budget == 100


def test_markdown_is_cut_at_headings_with_paths_and_line_ranges():
    data = (b"---\ntitle: Handbook\n---\n# Intro\n\nWelcome.\n\n## Install\n\nRun the installer.\n\n"
            b"```\n# not a heading\n```\n\n### Linux\n\nUse apt.\n")
    doc = read_document("/d/guide.md", data)
    assert doc.kind == "markdown" and doc.title == "Handbook"
    pieces = chunker().chunk(doc)
    assert [p.metadata["section"] for p in pieces] == ["Intro", "Intro > Install", "Intro > Install > Linux"]
    install = pieces[1]
    assert "# not a heading" in install.text  # inside a code fence it is not a heading
    assert lines_of(data, install) == install.text
    assert install.embed_text.startswith("Handbook > Intro > Install\n")
    assert all(p.metadata["kind"] == "markdown" and p.metadata["title"] == "Handbook" for p in pieces)


def test_long_prose_is_split_by_sentences_within_budget_and_keeps_line_ranges():
    sentences = [f"Sentence number {i} talks about topic {i} at some length here." for i in range(40)]
    data = ("\n".join(sentences) + "\n").encode()
    doc = read_document("/d/notes.txt", data)
    c = chunker(size=40, overlap=8)
    pieces = c.chunk(doc)
    assert len(pieces) > 3
    for p in pieces:
        assert words([p.embed_text])[0] <= c.budget
        assert p.text.split("\n")[0] in lines_of(data, p)
    assert pieces[0].metadata["line_start"] == 1 and pieces[-1].metadata["line_end"] == 40
    joined = " ".join(p.text for p in pieces)
    assert all(s in joined for s in sentences)  # nothing lost


def test_rst_headings_become_sections():
    data = b"=====\nTitle\n=====\n\nIntro para.\n\nUsage\n-----\n\nCall it.\n"
    doc = read_document("/d/x.rst", data)
    assert doc.kind == "rst" and doc.title == "Title"
    pieces = chunker().chunk(doc)
    assert [p.metadata["section"] for p in pieces] == ["Title", "Title > Usage"]
    assert pieces[1].metadata["line_start"] == 7 and "Call it." in pieces[1].text


def test_html_drops_scripts_and_uses_title_and_headings():
    data = (b"<html><head><title>Page T</title><style>p{}</style></head><body><h1>Top</h1><p>Alpha <b>beta</b>.</p>"
            b"<script>alert(1)</script><h2>Sub</h2><ul><li>one</li><li>two</li></ul></body></html>")
    doc = read_document("/d/p.html", data)
    pieces = chunker().chunk(doc)
    assert doc.kind == "html" and doc.title == "Page T"
    assert [p.metadata["section"] for p in pieces] == ["Top", "Top > Sub"]
    assert "Alpha beta." in pieces[0].text and "alert" not in " ".join(p.text for p in pieces)
    assert "line_start" not in pieces[0].metadata  # converted text has no file lines


def test_python_is_cut_at_definitions_with_symbol_labels():
    body = "\n".join(f"    x{i} = {i}" for i in range(25))
    data = (f"import os\n\n\n@decorator\ndef first():\n{body}\n\n\n# about second\ndef second():\n{body}\n\n\n"
            f"class Third:\n    def method(self):\n{body.replace('    ', '        ')}\n").encode()
    doc = read_document("/d/mod.py", data)
    pieces = chunker(size=100).chunk(doc)
    starts = [p.text.split("\n")[0] for p in pieces]
    # Every cut falls on a definition (with its decorators and comments), never inside one.
    assert len(pieces) == 3 and set(starts) <= {"import os", "@decorator", "# about second", "class Third:"}
    assert [p.metadata["section"] for p in pieces] == ["def first", "def second", "class Third, Third.method"]
    for p in pieces:
        assert lines_of(data, p) == p.text


def test_invalid_python_still_chunks_by_lines():
    data = b"def broken(:\n    pass\n\n" * 30
    pieces = chunker(size=30).chunk(read_document("/d/bad.py", data))
    assert len(pieces) > 1 and all(lines_of(data, p) == p.text for p in pieces)


def test_pack_prefers_definitions_then_blank_lines():
    counts = [10] * 10
    assert pack(counts, 45, breaks=set(), blanks=set()) == [(0, 4), (4, 8), (8, 10)]
    assert pack(counts, 45, breaks={3}, blanks=set()) == [(0, 3), (3, 7), (7, 10)]
    assert pack(counts, 45, breaks=set(), blanks={3}) == [(0, 3), (3, 7), (7, 10)]
    assert pack([100, 5], 45, breaks=set(), blanks=set()) == [(0, 1), (1, 2)]  # an oversized unit stands alone


def test_csv_chunks_repeat_the_header_and_keep_quoted_records_whole():
    rows = [f'r{i},"multi\nline {i}",{i}' for i in range(30)]
    data = ("id,note,value\n" + "\n".join(rows) + "\n").encode()
    pieces = chunker(size=30).chunk(read_document("/d/t.csv", data))
    assert len(pieces) > 1
    for p in pieces:
        assert p.text.startswith("id,note,value\n")
        body = p.text.split("\n", 1)[1]
        assert body.count('"') % 2 == 0  # no record cut in half
        assert lines_of(data, p) == body
    assert pieces[0].metadata["line_start"] == 2


def test_json_lists_give_item_ranges_and_objects_give_sections():
    doc = read_document("/d/a.json", json.dumps([{"id": i, "text": f"item {i}"} for i in range(40)]).encode())
    pieces = chunker(size=30).chunk(doc)
    assert doc.kind == "json" and len(pieces) > 1
    assert pieces[0].metadata["item_start"] == 0 and pieces[-1].metadata["item_end"] == 39
    doc = read_document("/d/b.json", json.dumps({"name": "x", "db": {"host": "h"}, "tags": ["a", "b"]}).encode())
    assert [p.metadata["section"] for p in chunker().chunk(doc)] == ["$", "db", "tags"]
    with pytest.raises(ReadError, match="invalid JSON at line 1"):
        read_document("/d/c.json", b'{"a": }')


def test_jsonl_keeps_records_whole_with_line_ranges_and_notes_bad_lines():
    data = b"\n".join(json.dumps({"n": i, "msg": f"event {i}"}).encode() for i in range(20)) + b"\nnot json\n"
    doc = read_document("/d/e.jsonl", data)
    assert doc.kind == "jsonl" and "1 line(s) are not valid JSON" in doc.note
    for p in chunker(size=20).chunk(doc):
        assert lines_of(data, p) == p.text


def test_chat_exports_are_recognized():
    gpt = [{"title": "Trip", "mapping": {
        "a": {"message": {"author": {"role": "user"}, "content": {"parts": ["Book a room"]}, "create_time": 1700000000}},
        "b": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["Done: room 12"]}, "create_time": 1700000060.5}},
        "root": {"message": None}}}]
    doc = read_document("/d/conversations.json", json.dumps(gpt).encode())
    pieces = chunker().chunk(doc)
    assert doc.kind == "chat" and pieces[0].text == "[2023-11-14 22:13] user: Book a room\n[2023-11-14 22:14] assistant: Done: room 12"
    assert pieces[0].metadata["section"] == "Trip" and pieces[0].metadata["message_end"] == 1
    slack = {"name": "general", "messages": [{"user": "ann", "text": "deploy at 5", "ts": "1700000000.1"}]}
    doc = read_document("/d/slack.json", json.dumps(slack).encode())
    assert doc.kind == "chat" and "ann: deploy at 5" in chunker().chunk(doc)[0].text
    wa = b"1/2/24, 10:00 - Ann: hi\n1/2/24, 10:01 - Bob: hello there\n"
    assert read_document("/d/export.txt", wa).kind == "chat"


def test_logs_are_recognized_by_name_or_content():
    log = b"2024-01-01 00:00:01 INFO a\n2024-01-01 00:00:02 WARN b\n"
    assert read_document("/d/app.txt", log).kind == "log"
    assert read_document("/d/app.log.1", b"anything\n").kind == "log"
    assert read_document("/d/x.log", b"anything\n").kind == "log"


def test_pdf_pages_are_sections_and_broken_pdfs_fail(tmp_path):
    path = tmp_path / "m.pdf"
    path.write_bytes(make_pdf(["First page words.", "Second page words."]))
    doc = read_document(str(path), path.read_bytes())
    pieces = chunker().chunk(doc)
    assert doc.kind == "pdf" and [p.metadata["page"] for p in pieces] == [1, 2]
    assert "Second page words." in pieces[1].text
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<<")
    with pytest.raises(ReadError, match="cannot read the PDF"):
        read_document(str(path), path.read_bytes())


def test_kind_detection_and_text_that_is_not_text():
    assert detect_kind("/d/x.unknown", b"plain words") == "text"
    assert detect_kind("/d/Makefile", b"all:\n") == "code"
    assert detect_kind("/d/image.png", b"\x89PNG\r\n\x1a\n\x00\x00") is None
    assert detect_kind("/d/noext", b"%PDF-1.7 ...") == "pdf"
    with pytest.raises(SkipFile, match="binary"):
        read_document("/d/a.docx", b"PK\x03\x04\x00\x00")
    with pytest.raises(SkipFile, match="binary content"):
        read_document("/d/a.txt", bytes(range(1, 32)) * 50)
    with pytest.raises(SkipFile, match="empty"):
        read_document("/d/a.txt", b"  \n\n \t\n")


def test_chunks_are_capped_in_characters_too():
    # MiniLM reads a word over 100 characters as one [UNK]: by tokens alone a 1 MB line was one 1 MB chunk.
    c = chunker(size=60)
    for name in ("/d/blob.txt", "/d/blob.log"):
        pieces = c.chunk(read_document(name, b"0123456789abcdef" * 65536))
        assert len(pieces) > 100 and max(len(p.text) for p in pieces) <= c.budget * MAX_CHARS_PER_TOKEN
        assert "".join(p.text for p in pieces) == "0123456789abcdef" * 65536


def test_a_wide_csv_header_is_cut_not_copied_whole_into_every_chunk():
    data = (", ".join(f"column_{i}" for i in range(3000)) + "\n" + "1\n" * 600).encode()
    c = chunker(size=60)
    pieces = c.chunk(read_document("/d/wide.csv", data))
    # Before: the 39 KB header was copied whole into every chunk, leaving 8 tokens for rows: 75 chunks, 2.8 MB.
    assert len(pieces) <= 30 and sum(len(p.text) for p in pieces) < 10 * len(data)
    assert all(p.text.startswith("column_0, column_1, ") and words([p.text])[0] <= c.budget for p in pieces)


def test_long_titles_and_headings_stay_out_of_every_chunk_s_metadata():
    doc = read_document("/d/h.md", ("# " + "h" * 100_000 + "\n\n" + "Some words here. " * 500).encode())
    pieces = chunker().chunk(doc)
    assert len(doc.title) <= 200 and all(len(p.metadata["title"]) <= 200 for p in pieces)
    assert all(len(p.metadata["section"]) <= 200 for p in pieces)


def test_json_that_python_cannot_hold_fails_with_a_named_reason():
    with pytest.raises(ReadError, match="nested too deeply") as deep:
        read_document("/d/deep.json", b"[" * 5000 + b"]" * 5000)
    assert deep.value.code == "too_deep"
    with pytest.raises(ReadError, match="invalid JSON") as big:
        read_document("/d/big.json", b"[" + b"7" * 5000 + b"]")
    assert big.value.code == "invalid_json"
    doc = read_document("/d/e.jsonl", b'{"a": 1}\n' + b"[" * 5000 + b"]" * 5000 + b"\n" + b"7" * 5000 + b"\n")
    assert doc.kind == "jsonl" and "2 line(s) are not valid JSON" in doc.note
    doc = read_document("/d/s.json", b'{"text": "lone \\ud800 surrogate", "\\udfff": 1}')
    assert "\ufffd" in doc.sections[0].text and chunker().chunk(doc)[0].text.encode()
    doc = read_document("/d/m.py", b"x = " + b"-" * 6500 + b"1\n")  # ast.parse: MemoryError
    assert doc.kind == "code" and chunker().chunk(doc)
