"""`agentmem ingest / search / sources` with a fake embedder: JSON shapes, exit codes, human output."""

import json

import pytest
from typer.testing import CliRunner

import indexes.store
import ui.cli
from agentmem.errors import AgentmemError, NotFound
from tests.fake_embedder import FakeEmbedder
from ui import cli_ingest  # noqa: F401  (registers the commands)

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_model(monkeypatch):
    monkeypatch.setattr(indexes.store, "shared_embedder", lambda settings: FakeEmbedder())


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n")
    (tmp_path / "docs" / "moles.txt").write_text("Star-nosed moles find worms by touch.\n")
    return tmp_path / "docs"


def invoke(*args):
    return runner.invoke(ui.cli.app, [str(a) for a in args])


def test_ingest_json_shape_and_rerun(folder):
    result = invoke("ingest", folder, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["files"] == 2 and out["chunks_added"] == 2 and out["unchanged"] == 0
    assert out["skipped"] == [] and out["failed"] == [] and out["chunks_removed"] == 0
    out = json.loads(invoke("ingest", folder, "--json").stdout)
    assert (out["files"], out["chunks_added"], out["unchanged"]) == (0, 0, 2)


def test_a_failed_file_gives_exit_code_1_and_a_reason(folder):
    (folder / "broken.json").write_text("{nope")
    result = invoke("ingest", folder, "--pool", "p1", "--json")
    assert result.exit_code == 1
    failed = json.loads(result.stdout)["failed"]
    assert len(failed) == 1 and failed[0]["path"].endswith("broken.json") and "invalid JSON" in failed[0]["reason"]
    human = invoke("ingest", folder, "--pool", "p1")
    assert human.exit_code == 1 and "failed: " in human.stdout and "broken.json" in human.stdout


def test_search_sources_and_remove(folder):
    invoke("ingest", folder, "--pool", "zoo")
    hits = json.loads(invoke("search", "sea otters sleep", "-k", "1", "--pool", "zoo", "--json").stdout)
    assert len(hits) == 1 and hits[0]["source"].endswith("otters.md") and 0 < hits[0]["score"] <= 1
    assert {"text", "score", "source", "title", "section", "line_start"} <= hits[0].keys()
    only = json.loads(invoke("search", "otters", "--pool", "zoo", "--where", '{"kind": "text"}', "--json").stdout)
    assert [h["source"].rsplit("/", 1)[1] for h in only] == ["moles.txt"]
    assert "otters.md" in invoke("search", "otters", "--pool", "zoo").stdout
    listed = json.loads(invoke("sources", "list", "--pool", "zoo", "--json").stdout)
    assert sorted(s["path"].rsplit("/", 1)[1] for s in listed) == ["moles.txt", "otters.md"]
    result = invoke("sources", "remove", folder / "moles.txt", "--pool", "zoo", "--json")
    assert json.loads(result.stdout)["chunks_removed"] == 1
    assert len(json.loads(invoke("sources", "list", "--pool", "zoo", "--json").stdout)) == 1
    assert isinstance(invoke("sources", "remove", folder / "moles.txt", "--pool", "zoo").exception, NotFound)


def test_bad_pool_and_bad_filter_are_user_errors(folder):
    assert isinstance(invoke("ingest", folder, "--pool", "no spaces").exception, AgentmemError)
    assert isinstance(invoke("search", "x", "--where", "{not json").exception, AgentmemError)
