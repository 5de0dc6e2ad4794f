"""The HTTP API and the server's shared parts with fakes: OpenAI-compatible chat (plain and streamed) and models,
auth, upload sanitization and size limit, teaching, consolidation jobs, adapters, the scheduler, the bind rule."""

import json
import os
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from agentmem.consolidate import RunOutcome
from agentmem.errors import ConfigError
from agentmem.manifest import Manifest
from agentmem.memory import Fact, FactStatus, InMemoryLog, Rating, RunStatus
from graphs.runtime import AgentRuntime
from indexes.store import KnowledgeBase
from tests.fake_embedder import FakeEmbedder
from tests.fakes import FakeBackend
from ui.app import create_app
from ui.security import check_bind, is_loopback
from ui.services import Services
from ui.uploads import destination, safe_relpath, unique_names

KEY = "s3cret-key-123"


class FakeRunner:
    """Stands in for a consolidation run: reports a stage and two training steps, then waits to be released."""

    def __init__(self):
        self.release = threading.Event()
        self.runs: list[str] = []

    def __call__(self, pool, run_id, progress, cancel):
        self.runs.append(run_id)
        progress({"stage": "select"})
        progress({"stage": "train", "step": 1, "total": 2, "loss": 1.5, "tokens_per_s": 90.0, "eta_s": 2.0})
        progress({"stage": "train", "step": 2, "total": 2, "loss": 0.5, "tokens_per_s": 95.0, "eta_s": 0.0})
        self.release.wait(10)
        status = RunStatus.CANCELLED if cancel.is_set() else RunStatus.SUCCEEDED
        self.memory.update_run(pool, run_id, status=status)
        progress({"stage": "done", "status": status.value})
        return RunOutcome(run_id, pool, status.value, gate={"promoted": False, "reason": "nothing new to train"})


class ContextBackend(FakeBackend):
    """Answers with the first context line when the prompt carries retrieved context, else refuses."""

    def _answer(self, messages, adapter):
        if adapter is not None:
            return super()._answer(messages, adapter)
        prompt = messages[-1]["content"]
        if "Context:" in prompt:
            context = prompt.split("Context:", 1)[1].split("Question:", 1)[0]
            lines = [x.strip() for x in context.splitlines() if x.strip() and not x.strip().startswith(("[", "#"))]
            return lines[0] if lines else "I don't know."
        return "I don't know."


def make_services(settings, **updates):
    settings = settings.model_copy(update=updates)
    rt = AgentRuntime(settings, backend=ContextBackend())
    rt.__dict__["knowledge"] = KnowledgeBase(settings, embedder=FakeEmbedder())
    memory = InMemoryLog()
    rt.__dict__["memory"] = memory
    runner = FakeRunner()
    runner.memory = memory
    return Services(settings, rt, runner=runner), runner


@pytest.fixture
def parts(settings):
    return make_services(settings)


@pytest.fixture
def client(parts):
    services, _ = parts
    with TestClient(create_app(services.settings, services=services, with_ui=False)) as c:
        yield c


def publish_adapter(services, tmp_path, pool="default", recall=1.0):
    staged = tmp_path / f"staged-{recall}"
    staged.mkdir()
    (staged / "adapter_config.json").write_text("{}")
    return services.rt.registry.publish(pool, staged, Manifest(base_model="fake", metrics={"recall": recall}))


def sse(response) -> list[dict | str]:
    out = []
    for line in response.text.splitlines():
        if not line:
            continue
        assert line.startswith("data: "), line
        payload = line.removeprefix("data: ")
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# -- OpenAI-compatible chat ------------------------------------------------------------------------------------

def test_models_lists_the_pools_with_their_adapter(client, parts, tmp_path):
    services, _ = parts
    services.rt.memory.add_fact(Fact(pool="support", text="The hotline opens at nine."))
    v = publish_adapter(services, tmp_path, pool="support")
    data = client.get("/v1/models").json()["data"]
    by_id = {m["id"]: m for m in data}
    assert set(by_id) == {"default", "support"}
    assert by_id["support"]["adapter"] == v.serving_name and by_id["default"]["adapter"] is None


def test_chat_completion_answers_from_an_uploaded_document_with_sources(client):
    up = client.post("/api/ingest", files={"files": ("orbit.md", b"# Orbit\n\nThe Zorblax orbit takes 412 days.\n")})
    assert up.status_code == 200 and up.json()["files"] == 1
    r = client.post("/v1/chat/completions", json={
        "model": "default", "messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": "How long is the Zorblax orbit?"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "default"
    assert "412 days" in body["choices"][0]["message"]["content"]
    assert body["system_fingerprint"] == "base" and body["agentmem"]["adapter"] is None
    assert body["agentmem"]["sources"][0]["source"].endswith("orbit.md")
    assert body["usage"]["completion_tokens"] > 0
    assert r.headers["X-Agentmem-Thread"] == body["agentmem"]["thread"]


def test_streamed_completion_reports_the_adapter_that_answered(client, parts, tmp_path):
    services, _ = parts
    v = publish_adapter(services, tmp_path)
    services.rt.backend.teach(v.serving_name, {"zorblax": "Zorblax is a gas giant with three moons."})
    r = client.post("/v1/chat/completions", json={
        "model": "default", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell me about Zorblax."}]}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Zorblax is a gas giant with three moons."
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) > 3  # really streamed
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    assert final["system_fingerprint"] == v.serving_name and final["agentmem"]["adapter"] == v.serving_name
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_thread_continues_by_user_field_and_header(client, parts):
    services, _ = parts
    ask = {"model": "default", "messages": [{"role": "user", "content": "first question"}], "user": "alice"}
    client.post("/v1/chat/completions", json=ask)
    client.post("/v1/chat/completions", json={**ask, "messages": [{"role": "user", "content": "second question"}]})
    client.post("/v1/chat/completions", headers={"X-Agentmem-Thread": "alice"},
                json={"messages": [{"role": "user", "content": "third question"}]})
    said = [m["content"] for m in services.rt.agent.history("alice") if m["role"] == "user"]
    assert said == ["first question", "second question", "third question"]


def test_teaching_through_chat_completions_streams_the_confirmation(client, parts):
    services, _ = parts
    r = client.post("/v1/chat/completions", json={"stream": True, "messages": [
        {"role": "user", "content": "Remember that the office wifi is called Tern."}]})
    chunks = [c for c in sse(r)[:-1] if c["choices"]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "remember that the office wifi is called Tern" in text
    assert [f.text for f in services.rt.memory.list_facts("default")] == ["the office wifi is called Tern."]


def test_chat_errors_are_openai_shaped(client):
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422
    r = client.post("/v1/chat/completions", json={"model": "../etc", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and "invalid pool name" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["hint"]


# -- auth and binding ------------------------------------------------------------------------------------------

def test_api_key_is_required_on_api_and_app_when_set(settings):
    services, _ = make_services(settings, api_key=KEY)
    with TestClient(create_app(services.settings, services=services)) as c:
        for path in ("/v1/models", "/api/facts", "/api/status"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers={"Authorization": "Bearer wrong-key-000"}).status_code == 401
            assert c.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": KEY}).status_code == 401  # scheme required
        assert c.get("/healthz").status_code == 200
        assert c.get("/config").status_code == 401  # the Gradio app
        assert c.post("/login", data={"username": "x", "password": "nope-nope"}).status_code == 400
        assert c.post("/login", data={"username": "anyone", "password": KEY}).status_code == 200
        config = c.get("/config")
        assert config.status_code == 200
        assert any(d.get("api_name") == "chat" for d in config.json()["dependencies"])


def test_without_a_key_the_api_is_open(client):
    assert client.get("/v1/models").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.1.1"])
def test_loopback_binds_need_no_key(settings, host):
    assert is_loopback(host)
    check_bind(host, settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])
def test_other_binds_need_a_key(settings, host):
    with pytest.raises(ConfigError, match="without an API key"):
        check_bind(host, settings)
    check_bind(host, settings.model_copy(update={"api_key": KEY}))


def test_cli_refuses_a_public_bind_without_key():
    from typer.testing import CliRunner

    import ui.cli

    ui.cli._register()
    result = CliRunner().invoke(ui.cli.app, ["ui", "--host", "0.0.0.0", "--port", "1"])
    assert isinstance(result.exception, ConfigError) and "AGENTMEM_API_KEY" in str(result.exception)


# -- uploads ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "etc/passwd"),
    ("/abs/notes.md", "abs/notes.md"),
    ("..\\..\\windows\\win.ini", "windows/win.ini"),
    (".env", "env"),
    ("a/./b/../c.txt", "a/b/c.txt"),
    ("", "upload"),
    ("..", "upload"),
    ("bad\x00name;rm -rf.md", "bad_name_rm -rf.md"),
    ("\uff0e\uff0e\uff0fx.md", "x.md"),  # full-width "../" normalizes to a real one, which is then dropped
    ("report (final).pdf", "report _final_.pdf"),
])
def test_upload_names_are_sanitized(name, expected):
    assert safe_relpath(name) == Path(expected)


@hsettings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=80))
def test_no_name_escapes_the_pool_folder(tmp_path_factory, name):
    from agentmem.settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("h"))
    target = destination(s, "default", name)
    root = (s.uploads_dir / "default").resolve()
    assert target.resolve().is_relative_to(root) and target.resolve() != root


def test_a_symlink_inside_the_folder_cannot_carry_a_write_out(settings, tmp_path):
    folder = settings.uploads_dir / "default"
    folder.mkdir(parents=True)
    (folder / "docs").symlink_to(tmp_path)
    with pytest.raises(Exception, match="outside"):
        destination(settings, "default", "docs/x.md")


def test_batch_names_stay_apart():
    assert unique_names(["a/README.md", "b/README.md", "README.md", "README.md"]) == [
        "a/README.md", "b/README.md", "README.md", "README-2.md"]


def test_ingest_upload_with_traversal_name_stays_in_uploads(client, parts, tmp_path):
    services, _ = parts
    home = services.settings.home
    r = client.post("/api/ingest", data={"pool": "docs"}, files=[
        ("files", ("../../../outside.md", b"The secret launch code is 4242.\n")),
        ("files", ("/tmp/evil.txt", b"Evil text about volcanoes.\n"))])
    assert r.status_code == 200, r.text
    assert sorted(r.json()["saved"]) == ["docs/outside.md", "docs/tmp/evil.txt"]
    assert not (home.parent / "outside.md").exists() and not (home / "outside.md").exists()
    hits = client.get("/api/search", params={"q": "launch code", "pool": "docs"}).json()
    assert hits[0]["source"] == str(home / "uploads" / "docs" / "outside.md")
    sources = {Path(s["path"]).name for s in client.get("/api/sources", params={"pool": "docs"}).json()}
    assert sources == {"outside.md", "evil.txt"}


def test_upload_size_limit(settings):
    services, _ = make_services(settings, max_upload_bytes=64)
    with TestClient(create_app(services.settings, services=services, with_ui=False)) as c:
        ok = c.post("/api/ingest", files={"files": ("ok.txt", b"x" * 63 + b"\n")})
        assert ok.status_code == 200, ok.text
        big = c.post("/api/ingest", files={"files": ("big.txt", b"y" * 65)})
        assert big.status_code == 413 and "upload limit" in big.json()["error"]["message"]
    assert sorted(os.listdir(services.settings.uploads_dir / "default")) == ["ok.txt"]  # no partial files


def test_ingest_resolves_misses_the_new_document_answers(client, parts):
    services, _ = parts
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Who founded Quellmark?"}]})
    assert r.json()["agentmem"]["missed"]
    up = client.post("/api/ingest", files={"files": ("q.md", b"Quellmark was founded by Ada Brandt.\n")}).json()
    assert len(up["resolved_misses"]) == 1
    assert [m.status.value for m in services.rt.memory.list_misses("default")] == ["resolved"]


# -- facts, consolidation, adapters ----------------------------------------------------------------------------

def test_teach_and_list_facts(client):
    r = client.post("/api/facts", json={"text": "The mascot of Brindle FC is a heron.", "pool": "sports"})
    assert r.status_code == 201 and r.json()["fact"]["status"] == "pending"
    facts = client.get("/api/facts", params={"pool": "sports"}).json()
    assert [f["text"] for f in facts] == ["The mascot of Brindle FC is a heron."]
    assert client.get("/api/facts", params={"pool": "sports", "status": "rejected"}).json() == []
    assert client.get("/api/facts").json() == []  # other pool


def test_consolidation_runs_in_background_one_per_pool(client, parts):
    services, runner = parts
    r = client.post("/api/consolidate", json={"pool": "default"})
    assert r.status_code == 202
    run_id = r.json()["run_id"]
    busy = client.post("/api/consolidate", json={})
    assert busy.status_code == 409 and busy.json()["error"]["type"] == "Busy"
    for _ in range(100):
        status = client.get(f"/api/consolidate/{run_id}").json()
        if status["progress"]["step"] == 2:
            break
        threading.Event().wait(0.02)
    assert status["status"] == "running" and status["progress"]["stage"] == "train"
    assert [p["loss"] for p in status["progress"]["loss"]] == [1.5, 0.5]
    runner.release.set()
    services.jobs.wait(run_id, 10)
    done = client.get(f"/api/consolidate/{run_id}").json()
    assert done["status"] == "succeeded" and done["progress"]["outcome"]["reason"] == "nothing new to train"
    assert client.get("/api/runs").json()[0]["id"] == run_id
    assert client.post("/api/consolidate", json={}).status_code == 202  # the pool is free again
    runner.release.set()


def test_cancel_stops_the_run(client, parts):
    services, runner = parts
    run_id = client.post("/api/consolidate", json={}).json()["run_id"]
    assert client.post("/api/consolidate/cancel", json={}).json()["cancelled"] == run_id
    runner.release.set()
    assert services.jobs.wait(run_id, 10).status == "cancelled"
    assert (services.settings.runs_dir / run_id / "cancel").exists()


def test_a_crashing_run_does_not_block_the_pool(parts):
    services, _ = parts

    def boom(pool, run_id, progress, cancel):
        raise RuntimeError("no model")

    services.jobs._runner = boom
    job = services.jobs.start("default")
    services.jobs.wait(job.run_id, 10)
    assert job.status == "failed" and "no model" in job.error
    assert services.rt.memory.get_run("default", job.run_id).status is RunStatus.FAILED
    assert services.rt.memory.active_run("default") is None


def test_adapters_list_activate_rollback(client, parts, tmp_path):
    services, _ = parts
    v1 = publish_adapter(services, tmp_path, recall=0.9)
    v2 = publish_adapter(services, tmp_path, recall=1.0)
    rows = client.get("/api/adapters").json()
    assert [(a["version"], a["active"], a["metrics"]["recall"]) for a in rows] == [("v1", False, 0.9),
                                                                                   ("v2", True, 1.0)]
    assert client.post("/api/adapters/rollback", json={}).json()["active"]["version"] == "v1"
    assert services.rt.serving.adapter_for("default") == v1.serving_name
    assert client.post("/api/adapters/activate", json={"version": "v2"}).json()["active"]["version"] == "v2"
    assert client.post("/api/adapters/activate", json={"version": "v9"}).status_code == 404
    assert v2.serving_name in services.rt.backend.adapters()


# -- scheduler, threads, status --------------------------------------------------------------------------------

def test_scheduler_starts_runs_when_due(settings):
    services, runner = make_services(settings, consolidate_min_pending=2)
    memory = services.rt.memory
    memory.add_fact(Fact(pool="a", text="Fact one is here."))
    assert services.scheduler.enabled and services.scheduler.tick() == []
    memory.add_fact(Fact(pool="a", text="Fact two is here."))
    started = services.scheduler.tick()
    assert len(started) == 1 and services.jobs.get(started[0]).pool == "a"
    assert services.scheduler.tick() == []  # busy: not twice
    runner.release.set()
    services.jobs.wait(started[0], 10)


def test_scheduler_every_minutes_only_with_work(settings):
    services, runner = make_services(settings, consolidate_every_minutes=10)
    now = [services.scheduler.started_at]
    services.scheduler.clock = lambda: now[0]
    services.rt.memory.add_fact(Fact(pool="b", text="A pending fact."))
    assert services.scheduler.due("b") is None
    now[0] += 601
    assert services.scheduler.due("b") == "10 min since the last run"
    assert services.scheduler.due("empty") is None
    runner.release.set()


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_whose_process_died_blocks_neither_the_scheduler_nor_the_app(settings):
    """The server (or a CLI run) was SIGKILLed mid-run: its run stays `running` in the log. The next scheduler
    check must record it as interrupted and start the pool's run again; a restarted server shows it failed at
    once, before anyone asks to consolidate."""
    services, runner = make_services(settings, consolidate_min_pending=1)
    memory = services.rt.memory
    memory.add_fact(Fact(pool="a", text="Fact one is here."))
    dead = memory.claim_run("a", config={"queued_by": "scheduler", "pid": _dead_pid()})
    assert services.scheduler.due("a") == "1 pending facts"
    assert memory.get_run("a", dead.id).status is RunStatus.FAILED
    assert "process died" in memory.get_run("a", dead.id).error
    started = services.scheduler.tick()
    assert len(started) == 1 and started[0] != dead.id
    runner.release.set()
    services.jobs.wait(started[0], 10)

    restarted, _ = make_services(settings)
    restarted.rt.__dict__["memory"] = memory
    stale = memory.claim_run("b", config={"queued_by": "app", "pid": _dead_pid()})
    memory.add_fact(Fact(pool="b", text="Fact of b."))
    restarted.warm()
    assert memory.get_run("b", stale.id).status is RunStatus.FAILED
    assert memory.active_run("b") is None


def test_scheduler_is_off_by_default(parts):
    services, _ = parts
    assert not services.scheduler.enabled and services.scheduler.describe().startswith("off")


def test_status_reports_parts_and_pools(client, parts):
    services, _ = parts
    services.rt.memory.add_fact(Fact(pool="x", text="Something true."))
    info = client.get("/api/status").json()
    assert info["data_folder"] == str(services.settings.home) and info["backend"].startswith("in-process")
    assert info["device"].startswith(("CPU", "GPU"))
    assert {p["pool"]: p["pending"] for p in info["pools"]} == {"default": 0, "x": 1}


def test_thread_index_orders_by_last_use(parts):
    services, _ = parts
    idx = services.threads
    idx.touch("p", "t1", "first thread question")
    idx.touch("p", "t2", "second " * 30)
    idx.touch("p", "t1", "a later message")
    threads = idx.list("p")
    assert [t.id for t in threads] == ["t1", "t2"]
    assert threads[0].title == "first thread question" and threads[1].title.endswith("…")
    assert idx.list("other") == []


def test_feedback_and_fact_records_used_by_the_app(parts):
    from agentmem.memory import Feedback

    services, _ = parts
    fb = services.rt.memory.add_feedback(Feedback(pool="default", question="q", answer="a", rating=Rating.UP))
    assert services.rt.memory.list_feedback("default") == [fb]
    reply = services.teach("the capital of Zorbania is Quellmark")
    assert services.rt.memory.get_fact("default", reply.fact_id).status is FactStatus.PENDING
