"""Crash safety of the long-running app: a real `agentmem ui` server whose scheduler is consolidating taught facts
is SIGKILLed (from outside during training; nightly also at named points inside the server: between moving the
adapter into the registry and registering it, after registering it and before marking its facts). A server
restarted on the same data folder records the interrupted run as what it was, has lost no fact, serves the old
adapter or the new one, and its scheduler finishes the work without anyone asking."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests import app_server
from tests.integration.cli_run import OPEN_GATE, cli, cli_env

pytestmark = pytest.mark.integration

FACTS = ["The mascot of Brindle FC is a silver heron.", "The Orvane Bridge is painted copper green."]
FAST_TRAIN = {"epochs": 2, "layer_span": [0.8, 1.0], "rank": 4, "lr": 3e-3}
SERVER_ENV = {"AGENTMEM_CONSOLIDATE_MIN_PENDING": "2", "AGENTMEM_SCHEDULER_POLL_S": "1",
              "AGENTMEM_CONSOLIDATE_TRAIN": json.dumps(FAST_TRAIN), "AGENTMEM_MAX_NEW_TOKENS": "24",
              "AGENTMEM_GATE_MIN_RECALL": "0", "AGENTMEM_GATE_MIN_RETENTION": "0", **OPEN_GATE}
RUN_TIMEOUT_S = 900


def call(server: app_server.Server, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def wait_for(what: str, probe, server: app_server.Server | None, timeout: float = RUN_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is False:  # the probe saw it can no longer happen
            raise AssertionError(f"{what}: missed\n{server.tail() if server else ''}")
        if value:
            return value
        if server is not None and server.proc.poll() is not None:
            return None  # the server died (a kill point inside it): the caller decides
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{server.tail() if server else ''}")


def in_training(server: app_server.Server):
    runs = call(server, "/api/runs")
    if runs and runs[0]["status"] == "running":
        live = call(server, f"/api/consolidate/{runs[0]['id']}")["progress"] or {}
        if live.get("stage") == "train" and live.get("step", 0) >= 1:
            return runs[0]["id"]
    return False if runs and runs[0]["status"] != "running" else None  # finished before we saw a step


@pytest.mark.parametrize("kill", [
    "outside during training",
    pytest.param("registry.moved", marks=pytest.mark.nightly),
    pytest.param("published", marks=pytest.mark.nightly),
    pytest.param("evaluate", marks=pytest.mark.nightly),
])
def test_a_killed_app_restarts_and_its_scheduler_finishes_the_run(kill: str, base_model_dir: Path,
                                                                  agentmem_home: Path):
    inside = {} if kill.startswith("outside") else {"AGENTMEM_CRASH_AT": kill}
    server = app_server.start(agentmem_home, base_model_dir, env=SERVER_ENV | inside)
    try:
        for fact in FACTS:
            call(server, "/api/facts", {"text": fact})
        if inside:
            assert server.proc.wait(RUN_TIMEOUT_S) == -9, server.tail()
            killed = None
        else:
            killed = wait_for("training to start", lambda: in_training(server), server)
            assert killed, server.tail()
            server.proc.kill()  # SIGKILL, mid-step
            assert server.proc.wait(30) == -9
    finally:
        app_server.stop(server)

    # the data folder opens cleanly from another process, with every fact still there
    env = cli_env(agentmem_home, base_model_dir, FAST_TRAIN)
    facts = json.loads(cli("facts", "list", "--json", env=env).stdout)
    assert sorted(f["text"] for f in facts) == sorted(FACTS)

    server = app_server.start(agentmem_home, base_model_dir, env=SERVER_ENV)  # no kill point this time
    try:
        runs = {r["id"]: r for r in call(server, "/api/runs")}
        dead = killed or min(runs, key=lambda i: runs[i]["created_at"])
        # recorded at startup, before any new run: interrupted (nothing published) or finished from the registry
        assert runs[dead]["status"] in ("failed", "succeeded"), runs[dead]
        if runs[dead]["status"] == "failed":
            assert "interrupted" in runs[dead]["error"]
            assert kill in ("outside during training", "registry.moved", "evaluate")

        def all_consolidated():
            rows = call(server, "/api/facts")
            return rows if all(f["status"] == "consolidated" for f in rows) else None

        facts = wait_for("the scheduler to consolidate the facts", all_consolidated, server)
        assert facts, server.tail()
        adapters = call(server, "/api/adapters")
        assert [(a["version"], a["active"]) for a in adapters] == [("v1", True)], adapters  # whole, once
        assert {f["adapter_version"] for f in facts} == {"v1"}
        assert not [r for r in call(server, "/api/runs") if r["status"] == "running"]
        reply = call(server, "/v1/chat/completions", {
            "model": "default", "messages": [{"role": "user", "content": "What is the mascot of Brindle FC?"}]})
        assert reply["system_fingerprint"] == adapters[0]["serving_name"]  # the restarted server serves it
    finally:
        app_server.stop(server)
    check = json.loads(cli("check", "--json", env=env).stdout)
    assert check["ok"], check
