"""A small folder of files of every kind the ingester reads, plus every kind of bad input, for tests.

`make_corpus(folder)` writes it and returns what a correct ingest must report. Each good file states one unusual
fact, so a search can check that the right source comes back. Also `make_pdf`, a valid PDF written with pypdf.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 50_000  # tests set this so the "huge" file stays small on disk


def make_pdf(pages: list[str]) -> bytes:
    """A PDF with one line of Helvetica text per page, normalized by a pypdf read/write round trip."""
    from pypdf import PdfReader, PdfWriter

    objs = ["<< /Type /Catalog /Pages 2 0 R >>",
            f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(len(pages)))}] /Count {len(pages)} >>",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET"
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>")
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    raw, offsets = b"%PDF-1.4\n", []
    for n, obj in enumerate(objs, 1):
        offsets.append(len(raw))
        raw += f"{n} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(raw)
    raw += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    raw += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    raw += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    out = io.BytesIO()
    PdfWriter(clone_from=PdfReader(io.BytesIO(raw))).write(out)
    return out.getvalue()


@dataclass
class Expected:
    good: dict[str, str] = field(default_factory=dict)        # file name -> kind
    queries: dict[str, str] = field(default_factory=dict)     # question -> file name that answers it
    skipped: dict[str, str] = field(default_factory=dict)     # file name -> words the reason contains
    failed: dict[str, str] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)            # silently not walked (hidden, tool folders)


def make_corpus(folder: Path, *, outside: Path | None = None) -> Expected:
    folder.mkdir(parents=True, exist_ok=True)
    exp = Expected()

    def good(name: str, kind: str, content: str | bytes, question: str | None = None) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        exp.good[name] = kind
        if question:
            exp.queries[question] = name

    good("guide.md", "markdown",
         "# Zorblax reactor\n\nThe Zorblax reactor powers the lunar base.\n\n## Cooling\n\n"
         "The Zorblax reactor is cooled by liquid tin pumped through ceramic pipes.\n\n## Staff\n\nTwelve engineers.\n",
         "What is the Zorblax reactor cooled with?")
    good("notes.rst", "rst", "Harbour notes\n=============\n\nTides\n-----\n\n"
         "The harbour of Velmora floods every spring when the glacier melts.\n",
         "When does the harbour of Velmora flood?")
    good("page.html", "html", "<html><head><title>Orchard report</title><script>var x=1;</script></head><body>"
         "<h1>Orchard</h1><p>The quince orchard on Hallam ridge yields <b>four tonnes</b> a year.</p></body></html>",
         "How much fruit does the quince orchard on Hallam ridge yield?")
    good("manual.pdf", "pdf", make_pdf(["Operating manual for the press.",
                                        "The hydraulic press must be oiled every Tuesday."]),
         "How often must the hydraulic press be oiled?")
    good("src/billing.py", "code",
         "import math\n\n\ndef compute_invoice_total(lines, tax_rate):\n"
         "    \"\"\"Sum invoice line amounts and add sales tax.\"\"\"\n"
         "    return math.fsum(lines) * (1 + tax_rate)\n\n\nclass Ledger:\n    def post(self, entry):\n"
         "        self.entries.append(entry)\n",
         "function that computes the invoice total with sales tax")
    good("src/app.js", "code", "function greetVisitor(name) {\n  return `Welcome to the aquarium, ${name}`;\n}\n")
    good("settings.json", "json", json.dumps({"service": "telescope", "observatory": {"altitude_m": 4205,
                                              "site": "Mauna Kea"}}))
    good("events.jsonl", "jsonl", "\n".join(json.dumps({"event": e, "n": i}) for i, e in
                                            enumerate(["boot", "sensor calibration drift detected", "halt"])) + "\n")
    good("crops.csv", "csv", "crop,region,yield\nsaffron,Kozani,low\nbarley,Skåne,high\n",
         "Where is saffron grown?")
    good("readme.txt", "text", "The lighthouse keeper on Skerry Isle winds the clock at dawn.\n",
         "Who winds the clock at dawn on Skerry Isle?")
    good("server.log", "log", "2024-03-01 10:00:01 INFO starting\n2024-03-01 10:00:02 ERROR disk quota exceeded "
         "on volume /srv/archive\n2024-03-01 10:00:03 INFO retry\n",
         "disk quota exceeded error on the archive volume")
    good("chat.json", "chat", json.dumps([{"role": "user", "content": "Where did we leave the spare canoe?"},
                                          {"role": "assistant", "content": "The spare canoe is in the boathouse."}]),
         "where is the spare canoe")
    good("whatsapp.txt", "chat", "12/01/23, 09:15 - Ana: the ferry to Lisbon leaves at noon\n"
         "12/01/23, 09:16 - Ben: thanks, see you on the ferry\n")
    good("legacy.txt", "text", "Caf\xe9 cr\xe8me is served at the Montr\xe9al station.\n".encode("latin-1"))
    exp.warned.add("legacy.txt")

    (folder / "empty.txt").write_bytes(b"")
    exp.skipped["empty.txt"] = "empty"
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 8)
    exp.skipped["blob.bin"] = "binary"
    (folder / "huge.txt").write_bytes(b"word " * (MAX_FILE_BYTES // 4))
    exp.skipped["huge.txt"] = "max_file_bytes"
    os.mkfifo(folder / "pipe")  # unreadable without blocking: a directory entry that is not a file
    exp.skipped["pipe"] = "not a regular file"
    os.symlink(folder / "no-such-target", folder / "dangling")
    exp.skipped["dangling"] = "broken symlink"
    if outside is not None:
        outside.mkdir(parents=True, exist_ok=True)
        (outside / "secret.txt").write_text("the outside secret is 42\n")
        os.symlink(outside / "secret.txt", folder / "leak.txt")
        exp.skipped["leak.txt"] = "outside"
    (folder / "bad\nname.txt").write_text("a name with a newline\n")
    exp.skipped["bad\\x0aname.txt"] = "control characters"
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R")
    exp.failed["broken.pdf"] = "PDF"
    (folder / "invalid.json").write_text('{"a": 1,,}')
    exp.failed["invalid.json"] = "invalid JSON"
    for hidden in (".git/config", "node_modules/lib/index.js", "__pycache__/billing.cpython-311.pyc", ".env"):
        (folder / hidden).parent.mkdir(parents=True, exist_ok=True)
        (folder / hidden).write_text("should never be indexed\n")
        exp.ignored.add(hidden)
    return exp
