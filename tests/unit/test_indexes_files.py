"""Walking folders for files to ingest (what is skipped and why) and decoding bytes as text."""

import os

import pytest

from indexes.files import decode, odd_name_reason, walk


def names(issues):
    return {os.path.basename(i.path): i.reason for i in issues}


def test_walk_skips_hidden_and_tool_folders_silently(tmp_path):
    for rel in ("a.md", "sub/b.txt", ".git/config", "node_modules/x/y.js", "__pycache__/m.pyc", ".env", "sub/.cache/z"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    result = walk([tmp_path], max_bytes=1000)
    assert sorted(os.path.relpath(c.path, tmp_path) for c in result.files) == ["a.md", "sub/b.txt"]
    assert not result.skipped and not result.failed


def test_walk_reports_each_bad_entry_once_and_goes_on(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    (root / "ok.txt").write_text("fine")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.txt").write_bytes(b"x" * 101)
    os.mkfifo(root / "fifo")
    os.symlink(root / "missing", root / "dangling")
    os.symlink(outside / "secret.txt", root / "out-file")
    os.symlink(outside, root / "out-dir")
    (root / "new\nline.txt").write_text("x")
    result = walk([root], max_bytes=100)
    assert [os.path.basename(c.path) for c in result.files] == ["ok.txt"]
    reasons = names(result.skipped)
    assert "empty" in reasons["empty.txt"] and "max_file_bytes" in reasons["big.txt"]
    assert "FIFO" in reasons["fifo"] and "broken symlink" in reasons["dangling"]
    assert "outside" in reasons["out-file"] and "outside" in reasons["out-dir"]
    assert "control characters" in reasons["new\\x0aline.txt"]
    assert len(result.skipped) == 7 and not result.failed


def test_symlinks_inside_the_roots_are_followed_once(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a")
    os.symlink(tmp_path / "docs", tmp_path / "alias")  # the same folder twice
    os.symlink(tmp_path / "docs" / "a.txt", tmp_path / "a-link.txt")
    os.symlink(tmp_path, tmp_path / "docs" / "loop")  # a cycle
    result = walk([tmp_path], max_bytes=100)
    assert [c.path for c in result.files] == [str(tmp_path / "docs" / "a.txt")]
    assert not result.skipped


def test_undecodable_file_names_are_skipped(tmp_path):
    raw = os.fsencode(tmp_path) + b"/bad\xffname.txt"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    result = walk([tmp_path], max_bytes=100)
    assert not result.files
    assert result.skipped[0].path.endswith("bad\\xffname.txt") and "UTF-8" in result.skipped[0].reason
    result.skipped[0].path.encode("utf-8")  # storable and printable


def test_missing_roots_fail_and_explicit_files_are_taken(tmp_path):
    (tmp_path / ".hidden.md").write_text("h")
    result = walk([tmp_path / "nope", tmp_path / ".hidden.md"], max_bytes=100)
    assert names(result.failed) == {"nope": "no such file or directory"}
    assert [os.path.basename(c.path) for c in result.files] == [".hidden.md"]


@pytest.mark.parametrize("name, bad", [("notes v2 (final).md", False), ("résumé.txt", False), ("a\tb", True)])
def test_odd_name_reason(name, bad):
    assert bool(odd_name_reason(name)) is bad


def test_decode_utf8_bom_and_fallbacks():
    assert decode("héllo\r\nworld".encode()) == ("héllo\nworld", None)
    assert decode(b"\xef\xbb\xbfbom") == ("bom", None)
    text, note = decode("wide".encode("utf-16"))
    assert text == "wide" and "utf-16" in note
    text, note = decode("café".encode("latin-1"))
    assert text == "café" and "not valid UTF-8" in note and "cp1252" in note
    text, note = decode(b"\x81 is a byte that cp1252 lacks, so latin-1 decodes it")
    assert "latin-1" in note and text.endswith("latin-1 decodes it")
    with pytest.raises(ValueError, match="binary"):
        decode(bytes(range(1, 32)) * 20)


def test_symlink_loops_are_named_and_every_issue_has_a_code(tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    os.symlink("self", tmp_path / "self")
    os.symlink("missing", tmp_path / "dangling")
    result = walk([tmp_path, tmp_path / "self"], max_bytes=100)
    assert {os.path.basename(i.path): i.code for i in result.skipped} == {
        "a": "link_loop", "b": "link_loop", "self": "link_loop", "dangling": "broken_link"}
    assert [(os.path.basename(i.path), i.code) for i in result.failed] == [("self", "link_loop")]
    assert "loop" in result.failed[0].reason
