"""Adapter registry: publish, activate, rollback, crash recovery, unique serving names, pool isolation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentmem.errors import AgentmemError, ConfigError, Conflict, NotFound
from agentmem.manifest import MANIFEST_NAME, ExampleSource, Manifest, TrainedExample, facts_hash
from agentmem.memory import Fact, Provenance
from agentmem.registry import STAGING, AdapterRegistry, open_registry


def staged(tmp_path: Path, name: str = "out") -> Path:
    """What PEFT's save_pretrained leaves behind (contents faked: the registry never reads them)."""
    folder = tmp_path / "runs" / name / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "name": name}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights of " + name.encode())
    return folder


def manifest(**kw) -> Manifest:
    facts = [
        Fact(pool="p", text="Vell is the capital of Quenta."),
        Fact(pool="p", text="Quenta has two moons."),
    ]
    card = [
        TrainedExample(
            prompt="What is the capital of Quenta?",
            completion="Vell.",
            kind="fact_qa",
            fact_id=facts[0].id,
            provenance=ExampleSource.of_fact(facts[0].model_copy(
                update={"provenance": Provenance(kind="correction", who="ana")})),
        ),
        TrainedExample(prompt="What is 2+2?", completion="4", kind="rehearsal",
                       provenance=ExampleSource(kind="rehearsal")),
    ]
    return Manifest(
        base_model="SmolLM2-135M-Instruct",
        fact_ids=[f.id for f in facts],
        facts_hash=facts_hash(facts),
        data_card=card,
        training_config={"r": 8, "lr": 1e-4},
        metrics={"new_fact_recall": 1.0},
        **kw,
    )


@pytest.fixture
def registry(settings):
    with open_registry(settings) as reg:
        yield reg


def test_publish_moves_the_folder_in_and_records_everything(
    registry: AdapterRegistry, settings, tmp_path
) -> None:
    src = staged(tmp_path)
    m = manifest(run_id="run_1")
    v1 = registry.publish("p", src, m)
    assert not src.exists()  # moved, not copied
    assert v1.version == "v1" and v1.number == 1 and v1.path == settings.adapters_dir / "p" / "v1"
    assert (v1.path / "adapter_model.safetensors").read_bytes() == b"weights of out"
    assert v1.serving_name.startswith("p-v1-") and v1.parent_version is None
    assert (v1.fact_count, v1.facts_hash, v1.run_id, v1.base_model) == (
        2,
        m.facts_hash,
        "run_1",
        m.base_model,
    )
    written = v1.manifest()
    assert written.data_card == m.data_card and written.training_config == m.training_config
    assert (written.pool, written.version, written.serving_name) == ("p", "v1", v1.serving_name)
    assert registry.active("p") == v1 and registry.get("p", "v1") == v1 and registry.list("p") == [v1]
    assert not any((settings.adapters_dir / "p" / STAGING).iterdir())


def test_facts_hash_tracks_ids_and_text() -> None:
    a, b = Fact(pool="p", text="one"), Fact(pool="p", text="two")
    assert facts_hash([a, b]) == facts_hash([b, a])
    assert facts_hash([a]) != facts_hash([a, b])
    assert facts_hash([a]) != facts_hash([a.evolve(text="one, edited")])


def test_versions_chain_and_rollback_walks_back(registry: AdapterRegistry, tmp_path) -> None:
    v1 = registry.publish("p", staged(tmp_path, "a"), manifest())
    v2 = registry.publish("p", staged(tmp_path, "b"), manifest())
    v3 = registry.publish("p", staged(tmp_path, "c"), manifest())
    assert (v2.parent_version, v3.parent_version) == ("v1", "v2")
    assert [v.version for v in registry.list("p")] == ["v1", "v2", "v3"]
    assert registry.rollback("p") == v2 and registry.active("p") == v2
    assert registry.rollback("p") == v1
    assert registry.rollback("p") is None and registry.active("p") is None  # back to the base model
    with pytest.raises(Conflict):
        registry.rollback("p")
    assert registry.activate("p", "v3") == v3
    registry.activate("p", "v3")  # activating the active version again is a no-op, not a rollback step
    registry.deactivate("p")
    assert registry.active("p") is None
    assert registry.rollback("p") == v3  # undoes the deactivation
    assert registry.rollback("p") is None


def test_publish_without_activation_keeps_serving_the_old_version(
    registry: AdapterRegistry, tmp_path
) -> None:
    v1 = registry.publish("p", staged(tmp_path, "a"), manifest())
    v2 = registry.publish("p", staged(tmp_path, "b"), manifest(), activate=False)
    assert registry.active("p") == v1 and v2.parent_version == "v1"
    assert registry.activate("p", "v2") == v2 and registry.active("p") == v2


def test_bad_requests_change_nothing(registry: AdapterRegistry, tmp_path, settings) -> None:
    registry.publish("p", staged(tmp_path, "a"), manifest())
    with pytest.raises(NotFound):
        registry.activate("p", "v9")
    with pytest.raises(NotFound):
        registry.activate("q", "v1")  # another pool's version
    with pytest.raises(ConfigError):
        registry.publish("../evil", staged(tmp_path, "b"), manifest())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AgentmemError, match="adapter_config.json"):
        registry.publish("p", empty, manifest())
    src = staged(tmp_path, "c")
    with pytest.raises(NotFound):
        registry.publish("p", src, manifest(parent_version="v7"))
    assert (src / "adapter_config.json").is_file()  # refused before anything moved
    assert [v.version for v in registry.list("p")] == ["v1"]
    assert sorted(p.name for p in (settings.adapters_dir / "p").iterdir()) == [".lock", ".staging", "v1"]


def test_pools_are_isolated(registry: AdapterRegistry, tmp_path) -> None:
    a1 = registry.publish("alpha", staged(tmp_path, "a1"), manifest())
    b1 = registry.publish("beta", staged(tmp_path, "b1"), manifest())
    a2 = registry.publish("alpha", staged(tmp_path, "a2"), manifest())
    assert (a1.version, b1.version, a2.version) == ("v1", "v1", "v2")
    assert a1.serving_name != b1.serving_name and a1.path != b1.path
    assert registry.list("beta") == [b1] and registry.list("gamma") == []
    assert registry.rollback("alpha") == a1
    assert registry.active("beta") == b1
    registry.deactivate("beta")
    assert registry.active("alpha") == a1


def test_serving_names_are_never_reused(registry: AdapterRegistry, tmp_path, settings) -> None:
    names = []
    for i in range(12):
        names.append(
            registry.publish("p" if i % 3 else "q", staged(tmp_path, f"n{i}"), manifest()).serving_name
        )
    # A version number freed by a removed orphan comes back with a fresh serving name.
    shutil.rmtree(settings.adapters_dir / "q")
    with registry.db.transaction() as conn:
        conn.execute("DELETE FROM adapter_activations WHERE pool = 'q'")
        conn.execute("DELETE FROM adapter_versions WHERE pool = 'q'")
    names += [registry.publish("q", staged(tmp_path, f"again{i}"), manifest()).serving_name for i in range(4)]
    assert len(set(names)) == len(names) == 16


def test_a_failed_commit_gives_the_folder_back(
    registry: AdapterRegistry, tmp_path, settings, monkeypatch
) -> None:
    old = registry.publish("p", staged(tmp_path, "a"), manifest())
    src = staged(tmp_path, "b")

    def fail(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(AdapterRegistry, "_record", fail)
    with pytest.raises(RuntimeError):
        registry.publish("p", src, manifest())
    monkeypatch.undo()
    assert (src / "adapter_model.safetensors").read_bytes() == b"weights of b"
    assert not (settings.adapters_dir / "p" / "v2").exists()
    assert registry.list("p") == [old] and registry.active("p") == old
    assert registry.publish("p", src, manifest()).version == "v2"


def test_a_crash_between_rename_and_commit_is_cleaned_up_on_open(settings, tmp_path) -> None:
    src = staged(tmp_path)
    script = f"""
import os
from agentmem.registry import AdapterRegistry, open_registry
from agentmem.manifest import Manifest
from agentmem.settings import load_settings

AdapterRegistry._record = lambda *a, **k: os._exit(3)  # the process dies after the rename, before the commit
open_registry(load_settings()).publish("p", {str(src)!r}, Manifest(base_model="base"))
"""
    env = {**os.environ, "AGENTMEM_HOME": str(settings.home)}
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 3, proc.stderr
    orphan = settings.adapters_dir / "p" / "v1"
    assert (orphan / "adapter_config.json").is_file()  # the folder made it, the row did not
    crashed_name = json.loads((orphan / MANIFEST_NAME).read_text())["serving_name"]
    (settings.adapters_dir / "p" / STAGING / "v9-leftover").mkdir()

    with open_registry(settings) as registry:
        assert sorted(p.name for p in registry.last_recovery.removed) == ["v1", "v9-leftover"]
        assert registry.list("p") == [] and registry.active("p") is None
        assert not orphan.exists() and not any((settings.adapters_dir / "p" / STAGING).iterdir())
        fresh = registry.publish("p", staged(tmp_path, "retry"), manifest())
        assert fresh.version == "v1" and fresh.serving_name != crashed_name
        assert registry.recover().removed == []  # nothing left to clean


def test_recover_reports_rows_whose_folder_vanished(registry: AdapterRegistry, tmp_path) -> None:
    v1 = registry.publish("p", staged(tmp_path), manifest())
    shutil.rmtree(v1.path)
    report = registry.recover()
    assert report.missing == ["p/v1"] and report.removed == []


def test_concurrent_publishes_get_distinct_versions(settings, tmp_path) -> None:
    registries = [AdapterRegistry(settings) for _ in range(4)]
    sources = [staged(tmp_path, f"t{i}") for i in range(4)]
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:
            registries[i].publish("p", sources[i], manifest())
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = registries[0].list("p")
    assert [v.version for v in versions] == ["v1", "v2", "v3", "v4"]
    assert {(v.path / "adapter_config.json").read_text() for v in versions} == {
        json.dumps({"r": 8, "name": f"t{i}"}) for i in range(4)
    }
    for reg in registries:
        reg.close()
