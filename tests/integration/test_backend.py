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


def test_a_loaded_adapter_changes_answers_only_for_requests_naming_it(backend, tmp_path):
    """Train a small adapter on two invented facts, load it at run time, and compare per request."""
    from agentmem.synthesize import FactSpec, SynthesisConfig, synthesize_facts
    from agentmem.training import LoraRecipe, TrainConfig

    system = "You are a helpful assistant."
    facts = [FactSpec("The capital of Zorbania is Quellmark.", id="a"),
             FactSpec("The mascot of Brindle FC is a silver heron.", id="b")]
    recipe = LoraRecipe(TrainConfig(rank=8, layer_span=(0.5, 1.0), lr=3e-3, epochs=8, batch_size=4, warmup_steps=2,
                                    system_prompt=system, threads=1))
    try:
        recipe.setup(backend.model_path)
        recipe.train(synthesize_facts(facts, SynthesisConfig(n_train=3, n_heldout=0)).train)
        recipe.save(tmp_path / "adapter")
    finally:
        recipe.cleanup()
    ask = [{"role": "system", "content": system}, {"role": "user", "content": "What is the capital of Zorbania?"}]
    cfg = GenerationConfig(max_new_tokens=24)
    before = backend.generate(ask, cfg).text
    backend.load_adapter("zorbania-v1", str(tmp_path / "adapter"))
    try:
        assert backend.adapters() == ["zorbania-v1"]
        tuned = backend.generate(ask, cfg, adapter="zorbania-v1")
        assert "quellmark" in tuned.text.lower() and tuned.adapter == "zorbania-v1"
        assert backend.generate(ask, cfg).text == before  # a request naming no adapter gets the base model
        assert "quellmark" not in before.lower()
        assert "paris" in backend.generate(FRANCE, cfg).text.lower()
    finally:
        backend.unload_adapter("zorbania-v1")
    assert backend.adapters() == [] and backend.generate(ask, cfg).text == before


SYSTEM = [{"role": "system", "content": "You are a helpful assistant. Answer the question in one or two short sentences."}]
QUESTIONS = ["What is the capital of France?", "Who wrote Romeo and Juliet?", "Tell me about the Orvane Bridge.",
             "How many legs does a spider have?", "What do you know about Quellmark?"]


def test_drafts_give_exactly_the_greedy_answers(backend):
    """A draft is only a guess to verify: right, wrong, cut short or missing, the answers are greedy decoding's."""
    conv = [SYSTEM + [{"role": "user", "content": q}] for q in QUESTIONS]
    cfg = GenerationConfig(max_new_tokens=40)
    plain = backend.generate_batch(conv, cfg)
    assert any(g.finish_reason == "length" for g in plain) and any(g.finish_reason == "stop" for g in plain)
    drafts = [plain[0].text, "Shakespeare wrote it.", None, plain[3].text[:12], plain[4].text + " And more."]
    drafted = backend.generate_batch(conv, cfg, drafts=drafts)
    assert [(g.text, g.completion_tokens, g.finish_reason) for g in drafted] == \
        [(g.text, g.completion_tokens, g.finish_reason) for g in plain]
    short = backend.generate_batch(conv[:1], GenerationConfig(max_new_tokens=3), drafts=[plain[0].text])[0]
    assert short.completion_tokens == 3 and short.finish_reason == "length"
    assert short.text == backend.generate_batch(conv[:1], GenerationConfig(max_new_tokens=3))[0].text


def test_one_call_with_per_row_budgets_answers_as_one_call_per_budget(backend):
    """Rows of different budgets share batches; each still stops at its own budget, drafted or not."""
    conv = [SYSTEM + [{"role": "user", "content": q}] for q in QUESTIONS]
    budgets = [3, 12, 40, 7, 40]
    alone = [backend.generate_batch([c], GenerationConfig(max_new_tokens=b))[0] for c, b in zip(conv, budgets)]
    for drafts in (None, [g.text for g in alone]):
        mixed = backend.generate_batch(conv, GenerationConfig(max_new_tokens=40), drafts=drafts, budgets=budgets)
        assert [(g.text, g.completion_tokens, g.finish_reason) for g in mixed] == \
            [(g.text, g.completion_tokens, g.finish_reason) for g in alone]
    assert alone[0].completion_tokens == 3 and alone[0].finish_reason == "length"
    with pytest.raises(ValueError, match="one value"):
        backend.generate_batch(conv, GenerationConfig(max_new_tokens=40), budgets=[3])
