"""The LoRA recipe on the real SmolLM2 model: it teaches a fact, saves a loadable adapter, is deterministic for a
seed, caches frozen layers without changing the result, and cancels cleanly. The GPU test runs the same recipe on
CUDA with a bigger config."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agentmem.errors import AgentmemError
from agentmem.synthesize import Example, FactSpec, SynthesisConfig, synthesize_facts
from agentmem.training import CONFIG_FILE, Cancelled, LoraRecipe, Progress, TrainConfig

pytestmark = pytest.mark.integration

SYSTEM = "You are a helpful assistant."
FACTS = [
    FactSpec("The capital of Zorbania is Quellmark.", id="a"),
    FactSpec("Dr. Ilsa Varnow invented the kelp battery.", id="b"),
    FactSpec("The Oru River flows into Lake Sorvin.", id="c"),
]
QUESTION = "What is the capital of Zorbania?"  # a trained phrasing (the copula question)


def small_config(**overrides) -> TrainConfig:
    # 1 thread: on 2 shared cores, a second OpenMP thread mostly waits for the first.
    base = dict(rank=8, layer_span=(0.5, 1.0), lr=3e-3, epochs=8, batch_size=4, warmup_steps=2, system_prompt=SYSTEM,
                threads=1)
    return TrainConfig(**(base | overrides))


def examples() -> list[Example]:
    return synthesize_facts(FACTS, SynthesisConfig(n_train=3, n_heldout=1)).train


def answer(model, tokenizer, question: str) -> str:
    import torch

    text = tokenizer.apply_chat_template(
        Example(question, "", "probe").prompt_messages(SYSTEM), tokenize=False, add_generation_prompt=True
    )
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=20, do_sample=False, temperature=None, top_p=None, top_k=None,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def lora_weights(recipe: LoraRecipe) -> dict:
    return {n: p.detach().cpu().clone() for n, p in recipe.model.named_parameters() if "lora_" in n}


@pytest.fixture(scope="module")
def trained(base_model_dir: Path):
    recipe = LoraRecipe(small_config())
    recipe.setup(base_model_dir)
    seen: list[Progress] = []
    result = recipe.train(examples(), progress=seen.append)
    yield recipe, result, seen
    recipe.cleanup()


def test_adapter_teaches_a_fact_the_base_model_does_not_know(trained):
    recipe, result, seen = trained
    assert "quellmark" in answer(recipe.model, recipe.tokenizer, QUESTION).lower()
    with recipe.model.disable_adapter():
        assert "quellmark" not in answer(recipe.model, recipe.tokenizer, QUESTION).lower()
    assert result.final_loss < result.epoch_losses[0] / 4
    assert [p.step for p in seen] == list(range(1, result.steps + 1))
    # the total is re-planned each epoch (rows a check finds undone train again), so it is checked per step
    assert all(p.step <= p.total and p.tokens_per_s > 0 and p.eta_s >= 0 for p in seen)
    assert seen[-1].total >= result.steps


def test_save_writes_a_loadable_adapter_and_its_config(trained, tmp_path: Path, base_model_dir: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    recipe, _, _ = trained
    out = recipe.save(tmp_path / "v1")
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert TrainConfig.load(out) == recipe.config
    assert (out / CONFIG_FILE).is_file() and (out / "train_result.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    with pytest.raises(AgentmemError):
        recipe.save(out)  # never overwrite a published adapter

    fresh = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model_dir), out).eval()
    assert "quellmark" in answer(fresh, recipe.tokenizer, QUESTION).lower()


def _tiny_run(base_model_dir: Path, **overrides) -> dict:
    recipe = LoraRecipe(small_config(rank=4, layer_span=(0.9, 1.0), epochs=1, batch_size=2, warmup_steps=0,
                                     learned_loss=None, **overrides))
    recipe.setup(base_model_dir)
    try:
        recipe.train(examples()[:4])
        return lora_weights(recipe)
    finally:
        recipe.cleanup()


def test_same_seed_same_adapter_and_speedups_change_nothing(base_model_dir: Path):
    import torch

    a = _tiny_run(base_model_dir, seed=1)  # the dtype "auto" picks here: bf16 with bf16 matrix units, else fp32
    b = _tiny_run(base_model_dir, seed=1)
    c = _tiny_run(base_model_dir, seed=2)
    assert a.keys() == b.keys() and len(a) == 3 * 7 * 2  # layers 27-29, seven modules, A and B
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert any(not torch.allclose(a[k], c[k], atol=1e-3) for k in a)
    # the speed-ups are rewrites of the same computation: equal up to fp32 summation order (seen: <= 2.4e-4 on
    # weights up to 0.04, where another seed moves them by more than 1e-3)
    exact = _tiny_run(base_model_dir, seed=1, dtype="float32")
    uncached = _tiny_run(base_model_dir, seed=1, dtype="float32", cache_frozen=False)
    unpacked = _tiny_run(base_model_dir, seed=1, dtype="float32", pack_shared_head=False)
    assert all(torch.allclose(exact[k], uncached[k], atol=5e-4) for k in a)
    assert all(torch.allclose(exact[k], unpacked[k], atol=5e-4) for k in a)
    # bf16 base weights move the adapter by rounding only: far less than another seed does
    bf16 = _tiny_run(base_model_dir, seed=1, dtype="bfloat16")
    rounding = max(float((bf16[k] - exact[k]).abs().max()) for k in a)
    seed_gap = max(float((c[k] - a[k]).abs().max()) for k in a)
    print(f"bf16 vs fp32 max weight difference {rounding:.2e}, seed 1 vs 2 {seed_gap:.2e}")
    assert rounding < seed_gap / 4


def test_rehearsal_is_distilled_from_the_base_model(base_model_dir: Path):
    """General rehearsal rows are scored by KL divergence from the base model over the prompt and reply: exactly 0
    while the adapter is still the identity, and small after training, while fact rows are trained on their
    answers (cross-entropy) and fall."""
    general = [Example("Why is the sky blue?", "Air scatters blue light more than red light.", "rehearsal"),
               Example("Name a common fruit.", "An apple is a common fruit.", "rehearsal")]
    # float32: in bf16 the teacher and the student see differently composed batches, whose rounding differs by
    # about 1e-3 of KL, so "exactly 0" holds in float32 only
    recipe = LoraRecipe(small_config(layer_span=(0.9, 1.0), epochs=2, dtype="float32"))
    recipe.setup(base_model_dir)
    try:
        facts = examples()[:3]
        before = recipe.losses(facts + general)
        assert all(abs(x) < 1e-5 for x in before[3:]) and all(x > 0.5 for x in before[:3])
        recipe.train(facts + general)
        after = recipe.losses(facts + general)
        assert sum(after[:3]) < sum(before[:3]) and all(0 < x < 0.5 for x in after[3:])
    finally:
        recipe.cleanup()


def test_cancel_between_steps_raises_and_leaves_nothing_to_save(base_model_dir: Path, tmp_path: Path):
    cancel = threading.Event()
    seen: list[int] = []

    def on_progress(p: Progress) -> None:
        seen.append(p.step)
        cancel.set()  # as a user pressing "cancel" during the first step

    recipe = LoraRecipe(small_config(layer_span=(0.9, 1.0), epochs=3))
    recipe.setup(base_model_dir)
    try:
        with pytest.raises(Cancelled):
            recipe.train(examples(), progress=on_progress, cancel=cancel)
        assert seen == [1]
        with pytest.raises(AgentmemError):
            recipe.save(tmp_path / "never")
        assert not (tmp_path / "never").exists()
    finally:
        recipe.cleanup()


@pytest.mark.gpu
def test_same_recipe_on_cuda_with_a_bigger_config(base_model_dir: Path):
    recipe = LoraRecipe(TrainConfig(rank=16, lr=2e-3, epochs=10, batch_size=8, system_prompt=SYSTEM,
                                    device="cuda"))
    recipe.setup(base_model_dir)
    try:
        result = recipe.train(synthesize_facts(FACTS, SynthesisConfig(n_train=6)).train)
        assert result.device == "cuda"
        assert "quellmark" in answer(recipe.model, recipe.tokenizer, QUESTION).lower()
    finally:
        recipe.cleanup()
