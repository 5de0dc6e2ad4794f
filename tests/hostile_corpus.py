"""A hostile folder for ingestion tests and benchmarks: broken, odd and dangerous input, 1,000 entries or more.

`make_hostile_corpus(root, outside, n_files=1000, max_file_bytes=...)` writes it and returns `HostileExpected`:
for every entry the ingest report must mention, what must become of it (ingested, skipped or failed, with which
reason code), the entries that must be passed over silently (hidden names, tool folders, a second path to a file
already met), and the secret marker written only under `outside`, which the folder reaches through symlinks and
which must never be read. What is in it:

- empty files, whitespace-only files, documents with nothing but headings or empty records;
- binary garbage (with and without NUL bytes) under text extensions, zip files, a nested zip bomb, gzip, tar;
- prose files of `huge_sizes` (20 MiB + 1 byte by default, over the default limit; the default test also writes
  5 MiB under a 1 MiB limit) and, within the limit, one 512 KB line of hex, a line of over-long words, whitespace
  only, a 100,000-character heading and <title>, a 3,000-column CSV header;
- JSON nested 10,000 deep (array and object), a JSON Lines file with one line nested 1,200 deep, integers of
  5,000 digits, 10,000 nested HTML tags, Python with 6,500 unary minus signs (ast.parse runs out of stack), 60
  nested folders, and folders nested past PATH_MAX (4096 bytes);
- latin-1, cp1252, UTF-16/32 with and without a BOM, invalid UTF-8, a BOM alone, NUL bytes past the first 8 KB,
  lone UTF-16 surrogates in JSON escapes;
- corrupt PDF (random bytes, truncated, header only, text named .pdf), DOCX/XLSX (random, truncated zip), HTML
  (random bytes, unclosed, tag soup), JSON, JSON Lines, CSV (a field over the csv module's limit), a ChatGPT
  export whose message times mix strings and numbers;
- file names with spaces, emoji, RTL and zero-width characters, 255-byte names, leading dashes, '..', backslashes,
  shell characters, NFC/NFD twins, a newline, a tab, DEL, an escape character and non-UTF-8 bytes (also a folder);
- symlinks to an outside file and folder (absolute, relative, through a chain), to /etc/passwd, /dev/zero and
  /proc/self/environ, to the root's parent, symlink loops, a self-link, a dangling link, links back into the folder;
- a FIFO, a Unix socket and a character device (where mknod is allowed);
- unreadable files and folders (chmod 000; read anyway when running as root, which `HostileExpected` reflects);
- bulk filler (tiny good, empty, binary, invalid and whitespace-only files) up to `n_files` entries.

Everything is deterministic (seeded); only the PATH_MAX depth and the permission outcomes depend on the machine.
The benchmark (bench/reliability.py) and tests/integration/test_ingest_hostile.py both use it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import socket
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.ingest_corpus import make_pdf

SECRET = "SECRET-MARKER-7f3c9e21"  # only ever written under `outside`
MB = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    status: str  # "ingested", "skipped" or "failed"
    code: str = ""  # the FileIssue code for skipped/failed entries


INGESTED = Outcome("ingested")


@dataclass
class HostileExpected:
    root: Path
    outside: Path
    # Path as the report shows it (absolute; undecodable bytes and control characters escaped) -> outcome.
    entries: dict[str, Outcome] = field(default_factory=dict)
    ignored: set[str] = field(default_factory=set)  # absolute paths passed over without a word
    warned: set[str] = field(default_factory=set)  # ingested with a note (decoded as cp1252, UTF-16, ...)
    queries: dict[str, str] = field(default_factory=dict)  # question -> the file that answers it
    secret: str = SECRET

    @property
    def tried(self) -> int:
        return len(self.entries)

    def paths(self, status: str) -> set[str]:
        return {p for p, o in self.entries.items() if o.status == status}


def _printable_name(raw: bytes) -> str:
    """A name as the report shows it: undecodable bytes and control characters written as escapes."""
    text = raw.decode("utf-8", "surrogateescape")
    out = []
    for c in text:
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif not c.isprintable():
            out.append(f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}")
        else:
            out.append(c)
    return "".join(out)


def make_hostile_corpus(root: Path, outside: Path, *, n_files: int = 1000, max_file_bytes: int = 20 * MB,
                        huge_sizes: tuple[int, ...] = (20 * MB + 1,), blob_bytes: int = 512 * 1024,
                        blank_bytes: int = 200_000, seed: int = 0) -> HostileExpected:
    """Write the corpus under `root` (created) and secrets under `outside` (created).

    `n_files` is the number of entries the report must mention (reached with filler; the fixed part alone is
    about 150). `huge_sizes` are prose files (skipped when over `max_file_bytes`, which must be the ingest's
    setting); `blob_bytes` is one line of hex without a space, `blank_bytes` a file of only whitespace."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(root))
    outside = Path(os.path.realpath(outside))
    exp = HostileExpected(root, outside)

    def put(rel: str, data: bytes | str, outcome: Outcome = INGESTED, *, warned: bool = False) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        exp.entries[str(path)] = outcome
        if warned:
            exp.warned.add(str(path))
        return path

    def link(rel: str, target: str | Path, outcome: Outcome | None) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        if outcome is None:
            exp.ignored.add(str(path))
        else:
            exp.entries[str(path)] = outcome

    # -- secrets outside the folder ---------------------------------------------------------------------------
    (outside / "secret.txt").write_text(f"The vault launch code is {SECRET}. Never index this.\n")
    (outside / "dir" / "sub").mkdir(parents=True, exist_ok=True)
    (outside / "dir" / "secret.md").write_text(f"# Vault\n\nThe vault launch code is {SECRET}.\n")
    (outside / "dir" / "sub" / "deep.txt").write_text(f"Deeper still: {SECRET}\n")

    # -- good documents of every kind, each with one fact to find ---------------------------------------------
    put("good/guide.md", "# Kelp farm\n\nThe kelp farm at Orrin Bay harvests every ninth day.\n")
    exp.queries["How often does the kelp farm at Orrin Bay harvest?"] = str(root / "good/guide.md")
    put("good/notes.rst", "Mill\n====\n\nThe windmill at Tessel grinds buckwheat into flour.\n")
    put("good/page.html", "<html><head><title>Bells</title></head><body><h1>Bells</h1>"
                          "<p>The bell foundry in Carrow casts bronze bells for ships.</p></body></html>")
    put("good/manual.pdf", make_pdf(["Ferry manual.", "The Lisk ferry carries nine bicycles at most."]))
    exp.queries["How many bicycles can the Lisk ferry carry?"] = str(root / "good/manual.pdf")
    put("good/tool.py", "def brew_tea(minutes):\n    \"\"\"Steep green tea for three minutes.\"\"\"\n"
                        "    return minutes * 60\n")
    put("good/data.json", json.dumps({"observatory": "Pell Ridge", "telescopes": [{"aperture_cm": 61}]}))
    put("good/events.jsonl", "\n".join(json.dumps({"n": i, "event": f"gate {i} opened"}) for i in range(5)) + "\n")
    put("good/crops.csv", "crop,place\nsaffron,Kozani\nhops,Zatec\n")
    put("good/server.log", "2024-05-01 10:00:00 INFO quarry pump started\n2024-05-01 10:00:05 WARN pump hot\n")
    put("good/chat.json", json.dumps([{"role": "user", "content": "Where is the spare oar?"},
                                      {"role": "assistant", "content": "The spare oar hangs in the boathouse."}]))

    # -- empty and contentless --------------------------------------------------------------------------------
    for ext in ("txt", "md", "pdf", "json", "docx", "html", "py"):
        put(f"empty/empty.{ext}", b"", Outcome("skipped", "empty"))
    put("empty/spaces.md", " \n\t\n   \n", Outcome("skipped", "empty"))
    put("empty/headings-only.md", "# One\n## Two\n### Three\n", Outcome("skipped", "no_text"))
    put("empty/empty-list.json", "[]", Outcome("skipped", "no_text"))
    put("empty/empty-object.json", "{}", Outcome("skipped", "no_text"))
    put("empty/header-only.csv", "a,b,c\n", Outcome("skipped", "no_text"))
    put("empty/blank.html", "<html><body>  </body></html>", Outcome("skipped", "no_text"))

    # -- binary garbage and archives ------------------------------------------------------------------------------
    for ext in ("txt", "md", "json", "html", "csv", "py", "log", "bin", "png", "exe"):
        put(f"binary/nul-garbage.{ext}", b"\x00" + rng.randbytes(4096), Outcome("skipped", "binary"))
        no_nul = bytes(b or 1 for b in rng.randbytes(4096))  # binary without a NUL byte: mostly controls
        put(f"binary/controls.{ext}", bytes(b if b >= 0x80 else b % 32 or 1 for b in no_nul),
            Outcome("skipped", "binary"))
    put("binary/random.pdf", rng.randbytes(4096), Outcome("failed", "invalid_pdf"))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", "text inside a zip is not read\n")
    put("zips/docs.zip", zipped.getvalue(), Outcome("skipped", "binary"))
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("plain.txt", "stored, not compressed\n")
    put("zips/stored.zip", stored.getvalue(), Outcome("skipped", "binary"))
    bomb = b"\0" * (16 * MB)
    for level in range(3):  # a zip of a zip of a zip of 16 MB of zeros: never unpacked
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"layer{level}.{'bin' if level == 0 else 'zip'}", bomb)
        bomb = buf.getvalue()
    put("zips/bomb.zip", bomb, Outcome("skipped", "binary"))
    put("zips/bomb-renamed.txt", bomb, Outcome("skipped", "binary"))
    put("zips/notes.gz", gzip.compress(b"gzipped text\n" * 100, mtime=0), Outcome("skipped", "binary"))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    put("zips/archive.tar.gz", tar.getvalue(), Outcome("skipped", "binary"))
    put("zips/fake.docx", zipped.getvalue(), Outcome("skipped", "binary"))
    put("zips/truncated.docx", zipped.getvalue()[:30], Outcome("skipped", "binary"))

    # -- big ------------------------------------------------------------------------------------------------------
    prose = b"The granite quarry at Holt ships stone by barge along the old canal each spring. "
    for size in huge_sizes:
        outcome = Outcome("skipped", "too_large") if size > max_file_bytes else INGESTED
        path = root / "huge" / f"prose-{size}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            block = prose * (MB // len(prose))
            left = size
            while left > 0:
                fh.write(block[:left])
                left -= len(block[:left])
        exp.entries[str(path)] = outcome
    too_big = Outcome("skipped", "too_large")
    put("huge/hex-blob.txt", (b"0123456789abcdef" * (blob_bytes // 16 + 1))[:blob_bytes],
        INGESTED if blob_bytes <= max_file_bytes else too_big)
    put("huge/long-words.log", (b"x" * 150 + b" ") * 1000, INGESTED)  # every word is one [UNK] token
    put("huge/whitespace.txt", b" \n" * (blank_bytes // 2), Outcome("skipped", "empty") if blank_bytes <= max_file_bytes
        else too_big)
    put("huge/heading-100k.md", "# " + "h" * 100_000 + "\n\nText under a very long heading.\n")  # metadata
    put("huge/title-100k.html", f"<title>{'t' * 100_000}</title><p>The Corran weir floods in March.</p>")
    put("huge/wide-header.csv", ",".join(f"column_{i}" for i in range(3000)) + "\n" + "1\n" * 600)
    put("huge/one-long-line.py", b"x = '" + b"y" * 100_000 + b"'\n", INGESTED)

    # -- deep -----------------------------------------------------------------------------------------------------
    put("deep/array-10000.json", "[" * 10_000 + "]" * 10_000, Outcome("failed", "too_deep"))
    put("deep/object-10000.json", '{"a":' * 10_000 + "1" + "}" * 10_000, Outcome("failed", "too_deep"))
    put("deep/object-50.json", '{"k":' * 50 + '"a shallow nest of the Wren river"' + "}" * 50, INGESTED)
    put("deep/one-deep-line.jsonl",
        json.dumps({"event": "lock 3 closed"}) + "\n" + "[" * 1_200 + "]" * 1_200 + "\n", INGESTED, warned=True)
    put("deep/nested.html", "<div>" * 10_000 + "The deepest div mentions the Ostrel lighthouse." + "</div>" * 10_000)
    put("deep/nested-quotes.md", "> " * 300 + "quoted very deeply\n")
    put("deep/minus.py", "x = " + "-" * 6_500 + "1\n")  # ast.parse: MemoryError (its stack holds 6,000)
    put("deep/parens.py", "x = " + "(" * 300 + "1" + ")" * 300 + "\n")  # ast.parse: SyntaxError (200 at most)
    put("deep/" + "/".join(["n"] * 60) + "/bottom.txt", "Sixty folders down lives the Marl badger.\n")
    too_long = _past_path_max(root / "deep" / "long")
    if too_long:
        exp.entries[too_long] = Outcome("failed", "unreadable")

    # -- encodings --------------------------------------------------------------------------------------------
    put("enc/latin1.txt", "Café crème at the Montréal station.\n".encode("latin-1"), warned=True)
    put("enc/cp1252.txt", "\u201cSmart quotes\u201d from a Windows editor \u2013 dash.\n".encode("cp1252"),
        warned=True)
    put("enc/utf16-le-bom.txt", "UTF-16 little endian with a byte order mark.\n".encode("utf-16"), warned=True)
    put("enc/utf16-be-bom.md", b"\xfe\xff" + "# Big endian\n\nWith a BOM.\n".encode("utf-16-be"), warned=True)
    put("enc/utf32-bom.txt", "UTF-32 with a byte order mark.\n".encode("utf-32"), warned=True)
    put("enc/utf16-no-bom.txt", "UTF-16 without a BOM looks like binary.\n".encode("utf-16-le"),
        Outcome("skipped", "binary"))
    put("enc/invalid-utf8.txt", b"Valid start, then \xff\xfe\xfd bad bytes, then valid end.\n", warned=True)
    put("enc/lone-continuation.md", b"# Bytes\n\nA lone continuation byte \x80 here.\n", warned=True)
    put("enc/bom-only.txt", b"\xef\xbb\xbf", Outcome("skipped", "empty"))
    put("enc/late-nul.txt", b"Plain words, then " + b"x" * 8200 + b" \x00\x00 NUL bytes past 8 KB.\n")
    put("enc/surrogates.json", '{"note": "a lone \\ud800 surrogate escape", "other": "\\udfff too"}')
    put("enc/surrogate-chat.jsonl", "".join('{"role": "%s", "content": "message \\ud83d %d"}\n' % (r, i)
                                            for i, r in enumerate(["user", "assistant"] * 3)))
    put("enc/crlf.txt", b"Windows line ends.\r\nOld Mac line ends.\rUnix.\n")
    put("enc/bidi.txt", "Mixed \u202eRTL override\u202c and \u05e9\u05dc\u05d5\u05dd and \u0645\u0631\u062d\u0628\u0627.\n")

    # -- corrupt formats --------------------------------------------------------------------------------------
    pdf = make_pdf(["Corrupt test page one.", "Page two of the corrupt test."])
    put("corrupt/header-only.pdf", b"%PDF-1.7\n", Outcome("failed", "invalid_pdf"))
    put("corrupt/text-named.pdf", "This is plain text with a .pdf name.\n", Outcome("failed", "invalid_pdf"))
    put("corrupt/garbage-after-header.pdf", b"%PDF-1.4\n" + rng.randbytes(2048), Outcome("failed", "invalid_pdf"))
    put("corrupt/truncated-early.pdf", pdf[:40], Outcome("failed", "invalid_pdf"))
    put("corrupt/pdf-in-a-txt.txt", b"%PDF-1.4\n1 0 obj\n<<", Outcome("failed", "invalid_pdf"))
    put("corrupt/random.docx", b"PK\x03\x04" + rng.randbytes(2048), Outcome("skipped", "binary"))
    put("corrupt/random.xlsx", rng.randbytes(2048), Outcome("skipped", "binary"))
    put("corrupt/random.html", b"\x00" + rng.randbytes(2048), Outcome("skipped", "binary"))
    # An unclosed <title> swallows the rest, as in a browser: nothing is left to index.
    put("corrupt/unclosed-title.html", "<html><head><title>Unclosed<body><p>The Vey bridge opens at dawn",
        Outcome("skipped", "no_text"))
    put("corrupt/unclosed.html", "<html><body><div><p>The Vey bridge opens at dawn<table><tr><td>and")
    put("corrupt/tag-soup.html", "<<p>>< div <b>bold<i>the Ambry tower</b></i> <<<>>> &bogus; &#xD800; &#99999999;")
    put("corrupt/invalid.json", '{"a": 1,,}', Outcome("failed", "invalid_json"))
    put("corrupt/huge-int.json", "[" + "7" * 5000 + "]", Outcome("failed", "invalid_json"))  # over 4,300 digits
    put("corrupt/huge-int.jsonl", '{"a": 1}\n' + "7" * 5000 + "\n", INGESTED, warned=True)
    put("corrupt/conversations.json", json.dumps([{"title": "Times of mixed types", "mapping": {
        "a": {"message": {"author": {"role": "user"}, "content": {"parts": ["Where is the Dunmore key?"]},
                          "create_time": "yesterday"}},
        "b": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["Under the Dunmore mat."]},
                          "create_time": 1700000000}}}}]))
    put("corrupt/trailing.json", '{"a": 1} {"b": 2}', Outcome("failed", "invalid_json"))
    put("corrupt/all-bad.jsonl", "not json\nnor this\n", Outcome("failed", "invalid_jsonl"))
    put("corrupt/huge-field.csv", "a,b\n1,\"" + "z" * 200_000 + "\"\n", Outcome("failed", "invalid_csv"))
    put("corrupt/unterminated.csv", 'a,b\n1,"never closed\n2,3\n')
    put("corrupt/bad.rst", "===\nTitle\n=\n\n.. broken:: directive\n   :opt\n\nText under a bad title.\n")

    # -- names ----------------------------------------------------------------------------------------------------
    body = "The Pike lantern burns whale oil.\n"
    for name in ("with spaces in it.txt", "emoji-\U0001F680\U0001F9EA.md", "rtl-\u202etxt.exe", "\u05e9\u05dc\u05d5\u05dd.txt",
                 "zero\u200bwidth.txt", "-leading-dash.txt", "--help", "a..b.txt", "trailing-dot.", "back\\slash.txt",
                 "shell;rm -rf *?$HOME`x`.txt", "quote'\"<>|:.txt", "caf\u00e9.txt", "cafe\u0301.txt",
                 "line\u2028separator.txt", "x" * 251 + ".txt", "\u00e9" * 125 + ".txt", "\U0001F600" * 63 + ".md"):
        put(f"names/{name}", body)
    bad_names = [b"new\nline.txt", b"tab\there.txt", b"del\x7f.txt", b"esc\x1b[31m.txt", b"cr\rhere.txt",
                 b"bad\xffbyte.txt", b"latin1-\xe9.txt"]
    names_dir = os.fsencode(root / "names")
    for raw in bad_names:
        with open(names_dir + b"/" + raw, "wb") as fh:
            fh.write(body.encode())
        code = "bad_name"
        exp.entries[str(root / "names") + "/" + _printable_name(raw)] = Outcome("skipped", code)
    bad_dir = names_dir + b"/folder\nwith-newline"
    os.mkdir(bad_dir)
    with open(bad_dir + b"/inside.txt", "wb") as fh:
        fh.write(body.encode())
    exp.entries[str(root / "names") + "/" + _printable_name(b"folder\nwith-newline")] = Outcome("skipped", "bad_name")
    for hidden in ("..double-dot-hidden.txt", ".hidden.md", ".git/config", "node_modules/pkg/index.js",
                   "__pycache__/x.pyc", ".venv/lib/site.py", "sub/.cache/blob"):
        path = root / "names" / hidden
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        exp.ignored.add(str(path))

    # -- symlinks -------------------------------------------------------------------------------------------------
    out = Outcome("skipped", "outside")
    link("links/to-outside-file.txt", outside / "secret.txt", out)
    link("links/to-outside-dir", outside / "dir", out)
    link("links/relative-out.md", os.path.relpath(outside / "secret.txt", root / "links"), out)
    link("links/chain-1.txt", "chain-2.txt", out)  # inside link -> inside link -> outside
    link("links/chain-2.txt", outside / "dir" / "secret.md", out)
    link("links/to-parent", "../..", out)  # the root's parent holds `outside` too
    link("links/to-etc-passwd", "/etc/passwd", out)
    link("links/to-dev-zero", "/dev/zero", out)
    link("links/to-proc-environ", "/proc/self/environ", out)
    link("links/loop-a", "loop-b", Outcome("skipped", "link_loop"))
    link("links/loop-b", "loop-a", Outcome("skipped", "link_loop"))
    link("links/self", "self", Outcome("skipped", "link_loop"))
    link("links/dangling.txt", "no-such-file.txt", Outcome("skipped", "broken_link"))
    link("links/.hidden-out", outside / "secret.txt", None)  # hidden: never looked at
    link("links/alias-of-guide.md", root / "good" / "guide.md", None)  # same file as good/guide.md: once
    link("links/alias-of-good", "../good", None)  # a folder already walked
    link("links/back-to-root", "..", None)  # a cycle

    # -- special files ----------------------------------------------------------------------------------------------
    (root / "special").mkdir()
    os.mkfifo(root / "special" / "fifo")
    exp.entries[str(root / "special" / "fifo")] = Outcome("skipped", "not_regular")
    sock_path = root / "special" / "sock"
    if len(os.fsencode(sock_path)) < 100:  # AF_UNIX paths are limited to about 108 bytes
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(sock_path))
        exp.entries[str(sock_path)] = Outcome("skipped", "not_regular")
    try:
        os.mknod(root / "special" / "null-device", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        exp.entries[str(root / "special" / "null-device")] = Outcome("skipped", "not_regular")
    except OSError:  # no CAP_MKNOD here: this corpus then simply has no device entry (nothing is expected of it)
        pass

    # -- permissions ----------------------------------------------------------------------------------------------
    locked = put("perms/locked.txt", "A locked file about the Quill archive.\n")
    locked.chmod(0)
    write_only = put("perms/write-only.md", "# Write only\n\nThe Sable gate is painted red.\n")
    write_only.chmod(0o200)
    for p in (locked, write_only):  # root reads them anyway: say what really happens
        if not os.access(p, os.R_OK):
            exp.entries[str(p)] = Outcome("failed", "permission")
    locked_dir = root / "perms" / "locked-dir"
    inner = put("perms/locked-dir/inner.txt", "Inside a locked folder lies the Tamsin map.\n")
    locked_dir.chmod(0)
    if not os.access(locked_dir, os.R_OK | os.X_OK):
        del exp.entries[str(inner)]
        exp.entries[str(locked_dir)] = Outcome("failed", "permission")

    # -- filler up to n_files entries ---------------------------------------------------------------------------
    colours = ["amber", "cobalt", "crimson", "jade", "ochre", "slate", "teal", "umber"]
    animals = ["heron", "otter", "lynx", "marten", "plover", "stoat", "tern", "vole"]
    i = 0
    while len(exp.entries) < n_files:
        folder = f"bulk/{i // 100:03d}"
        kind = i % 8
        if kind in (0, 4):
            put(f"{folder}/note-{i:05d}.txt",
                f"Bulk note {i}: the {colours[i % 8]} {animals[(i // 8) % 8]} nests at marker {i}.\n")
        elif kind == 1:
            put(f"{folder}/empty-{i:05d}.md", b"", Outcome("skipped", "empty"))
        elif kind == 2:
            put(f"{folder}/blob-{i:05d}.txt", b"\x00" + rng.randbytes(64), Outcome("skipped", "binary"))
        elif kind == 3:
            put(f"{folder}/bad-{i:05d}.json", '{"n": %d,' % i, Outcome("failed", "invalid_json"))
        elif kind == 5:
            put(f"{folder}/blank-{i:05d}.txt", "\n  \n", Outcome("skipped", "empty"))
        elif kind == 6:
            put(f"{folder}/broken-{i:05d}.pdf", b"%PDF-1.4\n" + rng.randbytes(32), Outcome("failed", "invalid_pdf"))
        else:
            link(f"{folder}/dangling-{i:05d}", f"missing-{i}", Outcome("skipped", "broken_link"))
        i += 1
    return exp


def _past_path_max(base: Path) -> str | None:
    """Folders of 200-character names nested until the path is longer than PATH_MAX (4096 bytes), with a file at
    the bottom; returns the first folder that cannot be listed by path. Built with dir_fd, as no path can reach it."""
    base.mkdir(parents=True, exist_ok=True)
    name, path = "d" * 200, str(base)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while len(os.fsencode(path)) < 4096:
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            path = f"{path}/{name}"
        out = os.open("lost.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"Past PATH_MAX lies the Ember ledger.\n")
        os.close(out)
    except OSError:
        return None
    finally:
        os.close(fd)
    return path


def restore_permissions(root: Path) -> None:
    """Make the corpus removable again (chmod 000 folders stop rmtree when not running as root)."""
    for p in (root / "perms" / "locked-dir", root / "perms" / "locked.txt", root / "perms" / "write-only.md"):
        if p.exists() or p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
