"""SIGKILL a real `agentmem consolidate --wait` at named points (AGENTMEM_CRASH_AT, see agentmem/crashpoints.py):
during training, between moving the adapter into the registry and registering it, and after registering it but
before marking its facts. After each kill the data folder opens, no taught fact is lost, the active adapter is the
old one or the new one and loads, and re-running the command finishes the work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_run import OPEN_GATE, cli, cli_env, cli_json

pytestmark = pytest.mark.integration

FACTS = ["The mascot of Brindle FC is a silver heron.", "The Orvane Bridge is painted copper green."]
# Small and fast: this test is about what survives a kill, not about what the adapter learns.
FAST_TRAIN = {"epochs": 2, "layer_span": [0.8, 1.0], "rank": 4, "lr": 3e-3}
NO_RECALL_BAR = {"AGENTMEM_GATE_MIN_RECALL": "0", "AGENTMEM_GATE_MIN_RETENTION": "0"}
KILLED = -9


@pytest.fixture
def env(base_model_dir: Path, agentmem_home: Path) -> dict[str, str]:
    return cli_env(agentmem_home, base_model_dir, FAST_TRAIN, **OPEN_GATE, **NO_RECALL_BAR)


def consolidate_killed_at(point: str, env: dict[str, str]) -> None:
    proc = cli("consolidate", "--wait", "--json", env=env | {"AGENTMEM_CRASH_AT": point}, check=False)
    assert proc.returncode == KILLED, f"expected a kill at {point}, got rc {proc.returncode}: {proc.stderr[-2000:]}"


def facts_by_text(env: dict[str, str]) -> dict[str, dict]:
    return {f["text"]: f for f in cli_json("facts", "list", env=env)}


def test_kills_during_consolidation_lose_nothing_and_a_rerun_finishes(env, agentmem_home: Path):
    for fact in FACTS:
        cli("teach", fact, env=env)
    taught = facts_by_text(env)
    assert set(taught) == set(FACTS)

    # 1. killed in the middle of training: nothing published, every fact pending, the run marked failed
    consolidate_killed_at("train.step@2", env)
    assert cli_json("status", env=env)  # the data folder opens
    facts = facts_by_text(env)
    assert set(facts) == set(FACTS) and {f["status"] for f in facts.values()} == {"pending"}
    assert cli_json("adapters", "list", env=env) == []
    run = cli_json("consolidate", "--status", env=env)
    assert run["status"] == "failed" and "interrupted" in run["error"]

    # 2. killed after the adapter folder was renamed into the registry, before its row was committed
    consolidate_killed_at("registry.moved", env)
    assert (agentmem_home / "adapters" / "default" / "v1" / "adapter_config.json").is_file()  # the crash's leftover
    assert cli_json("adapters", "list", env=env) == []  # opening the registry removed it: never half-registered
    assert not (agentmem_home / "adapters" / "default" / "v1").exists()
    assert {f["status"] for f in facts_by_text(env).values()} == {"pending"}

    # 3. killed after registering, before marking the facts: the new adapter is whole, active and loads
    consolidate_killed_at("published", env)
    versions = cli_json("adapters", "list", env=env)
    assert [(v["version"], v["active"]) for v in versions] == [("v1", True)]
    answer = cli_json("ask", "What is the mascot of Brindle FC?", "--no-retrieval", env=env)
    assert answer["adapter"] == versions[0]["serving_name"]  # the backend loaded it
    run = cli_json("consolidate", "--status", env=env)  # the dead run is recorded as what it was: published
    assert run["status"] == "succeeded" and run["adapter_version"] == "v1"

    # re-running finishes the work: the facts are recorded as held by v1 and nothing is trained twice
    result = json.loads(cli("consolidate", "--wait", "--json", env=env).stdout)
    assert result["status"] == "succeeded" and result["adapter_version"] is None, result
    facts = facts_by_text(env)
    assert {(f["status"], f["adapter_version"]) for f in facts.values()} == {("consolidated", "v1")}
    assert [v["version"] for v in cli_json("adapters", "list", env=env)] == ["v1"]

    # 4. killed inside a rollback: the transaction never committed, v1 still serves; a re-run rolls back
    proc = cli("adapters", "rollback", env=env | {"AGENTMEM_CRASH_AT": "registry.rollback"}, check=False)
    assert proc.returncode == KILLED
    assert [(v["version"], v["active"]) for v in cli_json("adapters", "list", env=env)] == [("v1", True)]
    assert cli_json("adapters", "rollback", env=env)["active"] is None
    assert [v["active"] for v in cli_json("adapters", "list", env=env)] == [False]
