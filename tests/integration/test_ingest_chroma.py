"""Ingestion and retrieval with the real MiniLM embedder, against embedded Chroma and a real `chroma run` server.

The same tests run in both modes. Bad input covers empty, binary, oversized, latin-1, corrupt PDF, invalid JSON,
a FIFO and a dangling symlink (the "unreadable" entries: tests run as root, where chmod 000 does not stop reads),
a symlink leading outside the folder, and a file name with a newline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from indexes.embedder import shared_embedder
from indexes.store import KnowledgeBase
from tests.ingest_corpus import MAX_FILE_BYTES, make_corpus

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    from agentmem.settings import Settings

    return shared_embedder(Settings(home=tmp_path_factory.mktemp("embed-home")))


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server on a free port, for the whole session; killed at teardown."""
    exe = Path(sys.executable).parent / "chroma"
    data, port = tmp_path_factory.mktemp("chroma-server"), _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(data / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [str(exe), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"chroma run exited with {proc.returncode}: "
                                f"{(data / 'server.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("chroma run did not answer its heartbeat within 60 s")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(params=["embedded", "server"])
def mode(request, settings, monkeypatch):
    """Settings for one Chroma mode; the env matches, so the CLI in the same test uses the same store."""
    update = {"max_file_bytes": MAX_FILE_BYTES}
    monkeypatch.setenv("AGENTMEM_MAX_FILE_BYTES", str(MAX_FILE_BYTES))
    if request.param == "server":
        update["chroma_url"] = request.getfixturevalue("chroma_server")
        monkeypatch.setenv("AGENTMEM_CHROMA_URL", update["chroma_url"])
    return settings.model_copy(update=update)


@pytest.fixture
def kb(mode, embedder):
    return KnowledgeBase(mode, embedder=embedder)


@pytest.fixture
def pool():
    return f"t-{uuid.uuid4().hex[:10]}"  # the server outlives each test: never reuse a pool


def base(path: str) -> str:
    return os.path.basename(path)


def test_mixed_folder_ingest_search_and_reingest(kb, pool, tmp_path):
    exp = make_corpus(tmp_path / "corpus", outside=tmp_path / "outside")
    report = kb.ingest([tmp_path / "corpus"], pool=pool)
    assert report.files == len(exp.good), report.to_dict()
    assert {base(i.path) for i in report.skipped} == set(exp.skipped)
    assert {base(i.path) for i in report.failed} == set(exp.failed)
    assert {base(i.path) for i in report.warnings} == exp.warned
    assert {base(s.path): s.kind for s in kb.sources(pool)} == {base(k): v for k, v in exp.good.items()}
    assert kb.count(pool) == report.chunks_added

    again = kb.ingest([tmp_path / "corpus"], pool=pool)
    assert (again.chunks_added, again.chunks_removed, again.unchanged) == (0, 0, len(exp.good))
    assert kb.count(pool) == report.chunks_added

    for question, name in exp.queries.items():
        hits = kb.search(question, pool=pool, k=3)
        assert base(hits[0].source) == base(name), (question, [(base(h.source), h.score) for h in hits])
        assert 0.2 < hits[0].score <= 1.0 and hits[0].pool == pool and hits[0].text
    pdf = kb.search("How often must the hydraulic press be oiled?", pool=pool, k=1)[0]
    assert pdf.page == 2 and "Tuesday" in pdf.text
    code = kb.search("invoice total with tax", pool=pool, k=1, where={"kind": "code"})[0]
    assert code.line_start == 1 and "def compute_invoice_total" in code.section


def test_changed_file_prune_and_pool_isolation(kb, pool, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "bees.txt").write_text("Honey bees communicate the direction of flowers with a waggle dance.\n")
    (folder / "owls.txt").write_text("Barn owls hunt at night by hearing the rustle of mice.\n")
    kb.ingest([folder], pool=pool)
    (folder / "bees.txt").write_text("Bumblebees can fly in cold weather by shivering their flight muscles.\n")
    report = kb.ingest([folder], pool=pool)
    assert (report.files, report.unchanged, report.chunks_removed) == (1, 1, 1)
    hit = kb.search("How do bumblebees fly when it is cold?", pool=pool, k=1)[0]
    assert base(hit.source) == "bees.txt" and "shivering" in hit.text
    assert all("waggle" not in h.text for h in kb.search("waggle dance", pool=pool, k=5))

    os.remove(folder / "owls.txt")
    report = kb.ingest([folder], pool=pool, prune=True)
    assert [base(p) for p in report.pruned] == ["owls.txt"] and kb.count(pool) == 1

    other = pool + "-b"
    assert kb.search("bumblebees", pool=other) == []
    (tmp_path / "cats.txt").write_text("Cats sleep for most of the day.\n")
    kb.ingest([tmp_path / "cats.txt"], pool=other)
    assert {base(h.source) for h in kb.search("sleep", pool=pool, k=5)} == {"bees.txt"}
    assert {base(h.source) for h in kb.search("sleep", pool=other, k=5)} == {"cats.txt"}


def test_taught_facts_live_in_the_pool_memory_collection(kb, pool):
    kb.remember(pool, "f-1", "The office wifi password is printed under the kettle.", {"source": "teach"})
    kb.remember(pool, "f-2", "Standup meetings start at 9:30.")
    hit = kb.search_memory("where can I find the wifi password?", pool=pool, k=1)[0]
    assert hit.chunk_id == "f-1" and hit.score > 0.4
    assert kb.search("wifi password", pool=pool) == [] and kb.search_memory("wifi", pool=pool + "-x") == []
    assert kb.forget(pool, "f-1") and [h.chunk_id for h in kb.search_memory("wifi", pool=pool, k=5)] == ["f-2"]


def test_cli_json_shapes_and_exit_codes(kb, pool, tmp_path):
    import ui.cli
    from ui import cli_ingest  # noqa: F401  (registers the commands on ui.cli.app)

    runner = CliRunner()
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "dunes.txt").write_text("Singing sand dunes hum when the wind moves the sand.\n")
    (tmp_path / "mixed" / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<")
    result = runner.invoke(ui.cli.app, ["ingest", str(tmp_path / "mixed"), "--pool", pool, "--json"])
    assert result.exit_code == 1, result.output  # broken.pdf failed, the batch went on
    out = json.loads(result.stdout)
    assert {"files", "chunks_added", "chunks_removed", "unchanged", "skipped", "failed"} <= out.keys()
    assert (out["files"], out["chunks_added"], out["unchanged"], out["skipped"]) == (1, 1, 0, [])
    assert [base(f["path"]) for f in out["failed"]] == ["broken.pdf"] and "PDF" in out["failed"][0]["reason"]

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.md").write_text("# Kites\n\nBox kites were invented by Lawrence Hargrave.\n")
    result = runner.invoke(ui.cli.app, ["ingest", str(tmp_path / "ok"), "--pool", pool, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["files"] == 1

    result = runner.invoke(ui.cli.app, ["search", "who invented the box kite", "-k", "2", "--pool", pool, "--json"])
    hits = json.loads(result.stdout)
    assert result.exit_code == 0 and len(hits) == 2
    assert {"text", "score", "source", "section", "pool"} <= hits[0].keys() and base(hits[0]["source"]) == "a.md"

    listed = json.loads(runner.invoke(ui.cli.app, ["sources", "list", "--pool", pool, "--json"]).stdout)
    assert len(listed) == 2 and {"path", "kind", "chunks", "content_hash"} <= listed[0].keys()
    result = runner.invoke(ui.cli.app, ["sources", "remove", str(tmp_path / "ok" / "a.md"), "--pool", pool])
    assert result.exit_code == 0 and "removed 1 chunk" in result.stdout
    result = runner.invoke(ui.cli.app, ["sources", "remove", str(tmp_path / "ok" / "a.md"), "--pool", pool])
    assert result.exit_code != 0
