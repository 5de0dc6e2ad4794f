"""Crash safety across the product's writes: run a user's session from the CLI (ingest documents, teach facts,
consolidate, roll back) with the process SIGKILLed at one named point (AGENTMEM_CRASH_AT, agentmem/crashpoints.py),
then check the data folder (`agentmem check --repair`): databases intact, no taught fact that was acknowledged
lost, no duplicate in the index, the active adapter old or new and loading. Re-running the interrupted command and
the rest of the session must end in the same state as a session never killed.

The README test command runs the cheap points (ingestion, taught-fact writes); `-m nightly` runs 50 points drawn
at random (seed: AGENTMEM_KILL_SEED, default 0) from every point, consolidation stages included.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.integration.cli_run import OPEN_GATE, cli, cli_env, cli_json

pytestmark = pytest.mark.integration

POOL = "p"
FACTS = ["The mascot of Brindle FC is a silver heron.", "The Orvane Bridge is painted copper green."]
FAST_TRAIN = {"epochs": 2, "layer_span": [0.8, 1.0], "rank": 4, "lr": 3e-3}
# "point/i": armed only for the session's i-th command (each command is its own process, so @N counts within one)
STORAGE_POINTS = ["ingest.flush@1", "memory.fact/1", "memory.fact/2"]
CONSOLIDATION_POINTS = ["select", "filter", "synthesize", "train", "train.step@1", "train.step@3", "evaluate",
                        "gate", "publish", "registry.moved", "published", "registry.rollback"]
NIGHTLY = random.Random(int(os.environ.get("AGENTMEM_KILL_SEED", "0"))).choices(
    STORAGE_POINTS + CONSOLIDATION_POINTS, k=50)


def session(docs: Path, *, consolidate: bool) -> list[tuple[str, ...]]:
    steps = [("ingest", str(docs), "--pool", POOL)] + [("teach", f, "--pool", POOL) for f in FACTS]
    if consolidate:
        steps += [("consolidate", "--wait", "--pool", POOL), ("adapters", "rollback", "--pool", POOL)]
    return steps


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, river in enumerate(["Zelvan", "Murrow", "Tessaly", "Okrine"]):
        (folder / f"{river.lower()}.md").write_text(
            f"# The {river} river\n\nThe {river} river is {120 + 40 * i} km long and flows north.\n\n"
            f"Its delta holds {i + 2} islands.\n", encoding="utf-8")
    return folder


def survive(spec: str, steps: list[tuple[str, ...]], env: dict[str, str]) -> None:
    point, _, only = spec.partition("/")
    acknowledged: list[str] = []
    killed_at = None
    for i, step in enumerate(steps):
        armed = not only or int(only) == i
        proc = cli(*step, env=env | ({"AGENTMEM_CRASH_AT": point} if armed else {}), check=False)
        if proc.returncode == -9:
            killed_at = i
            break
        assert proc.returncode == 0, f"{step} -> {proc.returncode}: {proc.stderr[-2000:]}"
        if step[0] == "teach":
            acknowledged.append(step[1])
    assert killed_at is not None, f"the session never reached kill point {spec}"

    # right after the kill: the folder is whole (after repairs a restart would make anyway)
    report = cli_json("check", "--repair", env=env)
    assert report["ok"], report["problems"]
    info = report["pools"].get(POOL, {})
    assert not info.get("index", {}).get("duplicate_sources")
    logged = {f["text"] for f in cli_json("facts", "list", "--pool", POOL, env=env)}
    assert set(acknowledged) <= logged, "a taught fact that was acknowledged is lost"
    versions = cli_json("adapters", "list", "--pool", POOL, env=env)
    active = [v for v in versions if v["active"]]
    answer = cli_json("ask", "What is the mascot of Brindle FC?", "--no-retrieval", "--pool", POOL, env=env)
    assert answer["adapter"] == (active[0]["serving_name"] if active else None)  # old or new, and it loads

    # re-running the interrupted command and the rest of the session finishes the work
    for step in steps[killed_at:]:
        cli(*step, env=env)


def assert_finished(env: dict[str, str], docs: Path, *, consolidated: bool) -> None:
    report = cli_json("check", env=env)
    assert report["ok"], report["problems"]
    idx = report["pools"][POOL]["index"]
    assert idx["sources"] == len(list(docs.iterdir())) and idx["unrecorded_chunks"] == 0
    assert idx["missing_chunks"] == 0 and not idx["duplicate_sources"]
    assert idx["chunks"] == idx["sources"]  # each small file is one chunk: nothing doubled
    active = [f["text"] for f in cli_json("facts", "list", "--pool", POOL, env=env) if f["status"] not in
              ("superseded", "rejected")]
    assert sorted(active) == sorted(FACTS), "each taught fact once"
    assert report["pools"][POOL]["memory_out_of_step"] == 0
    if consolidated:
        adapters = report["pools"][POOL]["adapters"]
        assert adapters["versions"] == ["v1"] and adapters["active"] is None  # trained once, then rolled back


@pytest.fixture
def env(base_model_dir: Path, agentmem_home: Path) -> dict[str, str]:
    return cli_env(agentmem_home, base_model_dir, FAST_TRAIN, **OPEN_GATE, AGENTMEM_GATE_MIN_RECALL="0",
                   AGENTMEM_GATE_MIN_RETENTION="0")


@pytest.mark.parametrize("point", STORAGE_POINTS)
def test_storage_kill_point(point: str, env, docs: Path):
    survive(point, session(docs, consolidate=False), env)
    assert_finished(env, docs, consolidated=False)


@pytest.mark.nightly
@pytest.mark.parametrize("point", [pytest.param(p, id=f"{i:02d}-{p}") for i, p in enumerate(NIGHTLY)])
def test_random_kill_point(point: str, env, docs: Path):
    survive(point, session(docs, consolidate=True), env)
    assert_finished(env, docs, consolidated=True)
