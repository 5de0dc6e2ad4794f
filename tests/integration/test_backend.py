"""The in-process backend on the real SmolLM2 model."""

import json
import subprocess
import sys
import threading

import pytest

from agentmem.llm.base import GenerationConfig
from agentmem.llm.transformers_backend import TransformersBackend

pytestmark = pytest.mark.integration
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def backend(base_model_dir):
    return TransformersBackend(base_model_dir)


def test_answers_paris_greedily(backend):
    g = backend.generate(FRANCE, GenerationConfig(max_new_tokens=24))
    assert "paris" in g.text.lower()
    assert g.completion_tokens > 0 and g.prompt_tokens > 0 and g.finish_reason == "stop" and g.adapter is None


def test_stream_equals_generate(backend):
    cfg = GenerationConfig(max_new_tokens=24)
    pieces = list(backend.stream(FRANCE, cfg))
    assert len(pieces) > 2
    assert "".join(pieces) == backend.generate(FRANCE, cfg).text


def test_max_tokens_and_stop(backend):
    short = backend.generate(FRANCE, GenerationConfig(max_new_tokens=2))
    assert short.completion_tokens == 2 and short.finish_reason == "length"
    stopped = backend.generate(FRANCE, GenerationConfig(max_new_tokens=24, stop=("Paris",)))
    assert "Paris" not in stopped.text and stopped.finish_reason == "stop"
    assert "".join(backend.stream(FRANCE, GenerationConfig(max_new_tokens=24, stop=("Paris",)))) == stopped.text


def test_sampling_is_seeded(backend):
    cfg = GenerationConfig(max_new_tokens=12, temperature=1.0, seed=7)
    assert backend.generate(FRANCE, cfg).text == backend.generate(FRANCE, cfg).text


def test_concurrent_requests_all_answer(backend):
    results, errors = [], []

    def ask():
        try:
            results.append(backend.generate(FRANCE, GenerationConfig(max_new_tokens=12)).text)
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 and len(set(results)) == 1


def test_abandoned_stream_releases_the_model(backend):
    it = backend.stream(FRANCE, GenerationConfig(max_new_tokens=200))
    next(it)
    it.close()
    assert "paris" in backend.generate(FRANCE, GenerationConfig(max_new_tokens=24)).text.lower()


def test_unknown_adapter_is_a_clear_error(backend):
    from agentmem.errors import AgentmemError

    with pytest.raises(AgentmemError, match="not loaded"):
        backend.generate(FRANCE, adapter="nope")


def test_cli_ask_json_answers_paris(base_model_dir, monkeypatch):
    monkeypatch.setenv("AGENTMEM_BASE_MODEL", str(base_model_dir))
    proc = subprocess.run([sys.executable, "-c", "from ui.cli import main; main()", "ask",
                           "What is the capital of France?", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "paris" in out["answer"].lower()
    assert out["adapter"] is None and out["tokens"] > 0 and out["seconds"] > 0
