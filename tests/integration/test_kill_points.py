"""Crash safety across the product's writes: run a user's session from the CLI (ingest documents, teach facts,
consolidate, roll back) with the process SIGKILLed at one named point (AGENTMEM_CRASH_AT, agentmem/crashpoints.py),
then check the data folder (`agentmem check --repair`): databases intact, no taught fact that was acknowledged
lost, no duplicate in the index, the active adapter old or new and loading. Re-running the interrupted command and
the rest of the session must end in the same state as a session never killed.

The README test command runs the cheap points (ingestion, taught-fact writes); `-m nightly` runs 50 kills drawn
at random (seed: AGENTMEM_KILL_SEED, default 0): half at a named point (consolidation stages included), half at a
random moment of the session (`t=0.437`: 43.7% into the wall time of a session never killed, measured first), so
that the draw also hits moments no named point marks (model loading, Chroma writes, evaluation, the registry).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
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


def _draw(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"t={rng.uniform(0.01, 0.99):.3f}"
    point = rng.choice(STORAGE_POINTS + CONSOLIDATION_POINTS)
    return f"train.step@{rng.randint(1, 3)}" if point.startswith("train.step") else point


_RNG = random.Random(int(os.environ.get("AGENTMEM_KILL_SEED", "0")))
NIGHTLY = [_draw(_RNG) for _ in range(50)]


def session(docs: Path, *, consolidate: bool) -> list[tuple[str, ...]]:
    steps = [("ingest", str(docs), "--pool", POOL)] + [("teach", f, "--pool", POOL) for f in FACTS]
    if consolidate:
        steps += [("consolidate", "--wait", "--pool", POOL), ("adapters", "rollback", "--pool", POOL)]
    return steps


def _write_docs(folder: Path) -> None:
    for i, river in enumerate(["Zelvan", "Murrow", "Tessaly", "Okrine"]):
        (folder / f"{river.lower()}.md").write_text(
            f"# The {river} river\n\nThe {river} river is {120 + 40 * i} km long and flows north.\n\n"
            f"Its delta holds {i + 2} islands.\n", encoding="utf-8")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    _write_docs(folder)
    return folder


def run_killed_after(step: tuple[str, ...], env: dict[str, str], delay_s: float) -> subprocess.CompletedProcess:
    """One CLI command, SIGKILLed from outside `delay_s` seconds after it started (if it is still running)."""
    proc = subprocess.Popen([sys.executable, "-c", "from ui.cli import main; main()", *step], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=delay_s)
    except subprocess.TimeoutExpired:
        proc.kill()  # SIGKILL
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def survive(spec: str, steps: list[tuple[str, ...]], env: dict[str, str],
            durations: list[float] | None = None) -> None:
    """Run `steps` with one kill: `point[/i]` (a named crash point, armed for every step or only the i-th) or
    `t=F` (from outside, a fraction F into the wall time `durations` of an unkilled session)."""
    acknowledged: list[str] = []
    killed_at = None
    timed = spec.startswith("t=")
    if timed:
        assert durations, "a timed kill needs the durations of an unkilled session"
        left = float(spec[2:]) * sum(durations)
    point, _, only = spec.partition("/")
    for i, step in enumerate(steps):
        if timed:
            # along the timeline: a command that finishes sooner than measured moves the kill into the next one;
            # the last is killed by half its measured time at the latest, so every timed draw kills something
            started = time.perf_counter()
            proc = run_killed_after(step, env, left if i < len(steps) - 1 else min(left, durations[i] / 2))
            left -= time.perf_counter() - started
        else:
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


def _env(home: Path, base_model_dir: Path) -> dict[str, str]:
    return cli_env(home, base_model_dir, FAST_TRAIN, **OPEN_GATE, AGENTMEM_GATE_MIN_RECALL="0",
                   AGENTMEM_GATE_MIN_RETENTION="0")


@pytest.fixture
def env(base_model_dir: Path, agentmem_home: Path) -> dict[str, str]:
    return _env(agentmem_home, base_model_dir)


@pytest.mark.parametrize("point", STORAGE_POINTS)
def test_storage_kill_point(point: str, env, docs: Path):
    survive(point, session(docs, consolidate=False), env)
    assert_finished(env, docs, consolidated=False)


@pytest.fixture(scope="module")
def unkilled_durations(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    """Wall seconds of each command of a whole session never killed (the timeline timed kills are drawn on);
    the session must end in the state every killed one is checked against."""
    root = tmp_path_factory.mktemp("unkilled")
    folder = root / "docs"
    folder.mkdir()
    _write_docs(folder)
    env = _env(root / "home", base_model_dir)
    durations = []
    for step in session(folder, consolidate=True):
        started = time.perf_counter()
        cli(*step, env=env)
        durations.append(time.perf_counter() - started)
    assert_finished(env, folder, consolidated=True)
    return durations


@pytest.mark.nightly
@pytest.mark.parametrize("point", [pytest.param(p, id=f"{i:02d}-{p}") for i, p in enumerate(NIGHTLY)])
def test_random_kill_point(point: str, env, docs: Path, request: pytest.FixtureRequest):
    durations = request.getfixturevalue("unkilled_durations") if point.startswith("t=") else None
    survive(point, session(docs, consolidate=True), env, durations)
    assert_finished(env, docs, consolidated=True)
