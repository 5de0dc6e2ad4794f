"""The whole learning loop on the real model, from the CLI: teach → consolidate --wait → closed-book answers come
from the new adapter → rollback → the old answers return. Small training config to fit CI's time."""

import json

import pytest

from tests.integration.cli_run import OPEN_GATE, cli, cli_env

pytestmark = pytest.mark.integration

# Facts that do not share a relation with the golden canaries ("What is the capital of Japan?"): a fake capital
# can bleed into a canary, which the gate then rightly refuses (seen: 4/5 canaries with a capital fact).
FACTS = ["The mascot of Brindle FC is a silver heron.", "Dr. Ilsa Varnow invented the kelp battery."]
QUESTION = "What is the mascot of Brindle FC?"


agentmem = cli


@pytest.fixture
def env(base_model_dir, agentmem_home):
    # The loop, not the regression gate, is under test here (the gate has its own tests), so only the recall
    # check stays strict. The default epoch cap with early stopping, not a fixed 6 epochs: 6 left one of the two
    # facts unlearned on CI's CPU (recall 0.5) while passing here, so training runs until every fact is learned.
    return cli_env(agentmem_home, base_model_dir, {"lr": 3e-3}, **OPEN_GATE)


def closed_book(env) -> dict:
    return json.loads(agentmem("ask", QUESTION, "--no-retrieval", "--json", env=env).stdout)


def test_teach_consolidate_answer_rollback(env, agentmem_home):
    before = closed_book(env)
    assert "heron" not in before["answer"].lower() and before["adapter"] is None
    for fact in FACTS:
        agentmem("teach", fact, env=env)

    result = json.loads(agentmem("consolidate", "--wait", "--json", env=env).stdout)
    assert result["status"] == "succeeded", result["gate"].get("reason")
    assert result["promoted"] and result["adapter_version"] == "v1", result["gate"]
    assert all(result["checks"].values())
    facts = json.loads(agentmem("facts", "list", "--json", env=env).stdout)
    assert {f["status"] for f in facts} == {"consolidated"} and {f["adapter_version"] for f in facts} == {"v1"}

    after = closed_book(env)
    assert "heron" in after["answer"].lower(), after
    assert after["adapter"] == result["serving_name"]

    manifest = json.loads(agentmem("adapters", "show", "v1", env=env).stdout)
    trained = [ex for ex in manifest["data_card"] if ex["kind"] == "fact"]
    assert trained and all(ex["provenance"]["kind"] == "taught" for ex in trained)

    agentmem("adapters", "rollback", env=env)
    back = closed_book(env)
    assert back["adapter"] is None and "heron" not in back["answer"].lower()


def test_a_gate_failure_keeps_the_old_adapter_and_says_why(env):
    agentmem("teach", FACTS[0], env=env)
    # one epoch at a negligible learning rate: the adapter cannot have learned the fact, so recall must fail
    env = env | {"AGENTMEM_CONSOLIDATE_TRAIN": json.dumps({"epochs": 1, "lr": 1e-7})}
    proc = agentmem("consolidate", "--wait", "--json", env=env, check=False)
    result = json.loads(proc.stdout)
    assert result["status"] == "rejected" and not result["promoted"]
    assert result["checks"]["recall"] is False and "recall" in result["gate"]["reason"]
    assert json.loads(agentmem("adapters", "list", "--json", env=env).stdout) == []
    facts = json.loads(agentmem("facts", "list", "--json", env=env).stdout)
    assert [f["status"] for f in facts] == ["pending"]
