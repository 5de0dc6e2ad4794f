"""Pools are tenants: a fact or document of pool A is never retrieved, listed, trained or served in pool B.
Every path through the server's parts: retrieval and answers (OpenAI API), facts, misses, sources and search lists
(what the app shows), consolidation's training data, and adapters."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem.consolidate import Consolidation
from agentmem.memory import Miss, Resolution
from tests.unit.test_api import make_services, publish_adapter
from ui.app import create_app

SECRET = "The vault code of Tenant A is 7341."
DOC = b"# Tenant A handbook\n\nThe Tenant A office is on Quarry Lane, floor 9.\n"


@pytest.fixture
def world(settings, tmp_path):
    services, _ = make_services(settings)
    with TestClient(create_app(services.settings, services=services, with_ui=False)) as client:
        assert client.post("/api/facts", json={"text": SECRET, "pool": "a"}).status_code == 201
        up = client.post("/api/ingest", files={"files": ("handbook.md", DOC)}, data={"pool": "a"})
        assert up.status_code == 200 and up.json()["files"] == 1
        yield services, client


def chat(client, pool, question):
    r = client.post("/v1/chat/completions", json={"model": pool, "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200, r.text
    return r.json()


def test_pool_a_answers_from_its_own_knowledge(world):
    _, client = world
    body = chat(client, "a", "Where is the Tenant A office?")
    sources = {s["source"].rsplit("/", 1)[-1] for s in body["agentmem"]["sources"]}
    assert "handbook.md" in sources and any(s.startswith("memory:") for s in sources)


def test_retrieval_and_answers_in_b_never_see_a(world):
    services, client = world
    for question in ("What is the vault code of Tenant A?", "Where is the Tenant A office?"):
        body = chat(client, "b", question)
        assert "7341" not in body["choices"][0]["message"]["content"]
        assert "Quarry" not in body["choices"][0]["message"]["content"]
        assert body["agentmem"]["sources"] == []
    assert services.rt.knowledge.search("Tenant A office", "b") == []
    assert services.rt.knowledge.search_memory("vault code", "b") == []


def test_lists_in_b_show_nothing_of_a(world):
    _, client = world
    chat(client, "b", "What is the vault code of Tenant A?")  # a miss, logged in b only
    assert client.get("/api/facts", params={"pool": "b"}).json() == []
    assert client.get("/api/sources", params={"pool": "b"}).json() == []
    assert client.get("/api/search", params={"q": "Tenant A office", "pool": "b"}).json() == []
    assert [m["pool"] for m in client.get("/api/misses", params={"pool": "b"}).json()] == ["b"]
    assert client.get("/api/misses", params={"pool": "a"}).json() == []
    assert [f["text"] for f in client.get("/api/facts", params={"pool": "a"}).json()] == [SECRET]


def test_consolidation_of_b_never_trains_a(world):
    services, client = world
    rt = services.rt
    miss = rt.memory.add_miss(Miss(pool="a", question="Who cleans the Tenant A office?"))  # a miss in a ...
    rt.memory.resolve_miss("a", miss.id, Resolution(kind="document", ref="handbook.md"))  # ... resolved there
    asked = []
    job = Consolidation(rt.settings, rt.memory, rt.registry, rt.backend, base_model_dir=Path("/nowhere"),
                        document_answer=lambda pool, q: asked.append(pool) or ("The cleaner is Bo.", ["x"]))
    assert job.select("b") == [] and asked == []
    assert {c.spec.text for c in job.select("a") if c.fact} == {SECRET} and asked == ["a"]
    assert job.previous_facts("b") == []


def test_an_adapter_of_a_is_never_served_in_b(world, tmp_path):
    services, client = world
    v = publish_adapter(services, tmp_path, pool="a")
    assert services.rt.serving.adapter_for("a") == v.serving_name
    assert services.rt.serving.adapter_for("b") is None
    assert chat(client, "b", "Hello?")["system_fingerprint"] == "base"
    assert chat(client, "a", "Hello?")["system_fingerprint"] == v.serving_name
    models = {m["id"]: m["adapter"] for m in client.get("/v1/models").json()["data"]}
    assert models["a"] == v.serving_name and models.get("b") is None
    assert client.get("/api/adapters", params={"pool": "b"}).json() == []
    assert client.post("/api/adapters/rollback", json={"pool": "b"}).status_code == 409  # nothing of b to undo
    assert services.rt.serving.adapter_for("a") == v.serving_name
