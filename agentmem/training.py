"""The LoRA training recipe: chat examples in, a PEFT adapter out (`setup / train / save / cleanup`).

Same code on CUDA and CPU (float32 there), deterministic for a seed, loss on the answer tokens only, length-sorted
batches with dynamic padding, optional skipping of examples already learned, progress callbacks and cancellation
between steps. It does not pick facts, synthesize examples, evaluate, or publish adapters (the registry does).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentmem.errors import AgentmemError, ConfigError, ModelError
from agentmem.synthesize import Example
from agentmem.train_config import ALL_LINEAR, CONFIG_FILE, TrainConfig, atomic_write
from agentmem.train_forward import Cancelled, DecoderRunner, only_layers, raise_if_cancelled
from agentmem.train_math import lr_factor, topk_kl
from agentmem.train_precision import FP32_ATTENTION, attention_for, training_dtype
from agentmem.train_rows import (
    IGNORE,
    Encoded,
    Rotation,
    batch_size_for,
    batches,
    distill_labels,
    encode_example,
)

__all__ = ["ALL_LINEAR", "CONFIG_FILE", "Cancelled", "LoraRecipe", "Progress", "TrainConfig", "TrainResult",
           "encode_example"]

_CACHEABLE = {"llama", "mistral", "qwen2", "qwen3"}


@dataclass(frozen=True)
class Progress:
    step: int
    total: int  # estimated: re-planned each epoch as learned examples drop out (early stopping ends sooner)
    epoch: int
    loss: float
    tokens_per_s: float
    elapsed_s: float
    eta_s: float


@dataclass
class TrainResult:
    steps: int
    epochs: int
    examples: int
    tokens: int  # non-padding tokens run through the model, over all steps
    seconds: float
    tokens_per_s: float
    final_loss: float  # mean answer-token loss of the examples trained in the last epoch
    stopped_early: bool  # every fact example was learned before the last planned epoch
    device: str
    epoch_losses: list[float] = field(default_factory=list)
    epoch_tokens: list[int] = field(default_factory=list)  # tokens run per epoch (later epochs skip learned rows)
    skipped: int = 0  # example-passes skipped because the example was already learned
    unlearned: int = 0  # fact examples whose worst answer token was still above learned_loss when last seen
    unlearned_questions: list[str] = field(default_factory=list)  # their questions (the first 20), to see which
    dtype: str = "float32"  # the base weights' dtype while training (the adapter's own weights are float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LoraRecipe:
    """setup(base model) -> train(examples) -> save(folder) -> cleanup(). One adapter per recipe object."""

    def __init__(self, config: TrainConfig | None = None):
        self.config = config or TrainConfig()
        self.model: Any = None  # the PeftModel after setup
        self.tokenizer: Any = None
        self.device: str | None = None
        self.dtype: Any = None  # the base weights' dtype while training (LoRA weights stay float32)
        self.base_model_dir: Path | None = None
        self.layers: tuple[int, int] | None = None  # [first, last) decoder layers adapted, known after setup
        self.result: TrainResult | None = None
        self._trained = False
        self._teacher: dict[int, Any] = {}  # example -> the base model's top-k (ids, log-probs) while distilling
        self._runner: DecoderRunner | None = None
        self._prev_threads: int | None = None

    # -- setup ---------------------------------------------------------------------------------------------
    def setup(self, base_model_dir: Path) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from agentmem.llm.transformers_backend import pick_device

        cfg = self.config
        hf_logging.disable_progress_bar()
        if cfg.threads:
            self._prev_threads = torch.get_num_threads()
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        self.dtype = dtype = training_dtype(self.device, cfg.dtype)
        attention = attention_for(self.device, dtype)
        self.base_model_dir = Path(base_model_dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.base_model_dir)
            model = AutoModelForCausalLM.from_pretrained(self.base_model_dir, dtype=dtype,
                                                         **({"attn_implementation": attention} if attention else {}))
        except Exception as exc:
            raise ModelError(
                f"cannot load the base model at {self.base_model_dir}: {str(exc).splitlines()[0][:200]}",
                "point it at a local Hugging Face model folder (agentmem init makes one)",
            ) from exc
        self.layers = cfg.layer_range(int(getattr(model.config, "num_hidden_layers", 0)))
        full = self.layers == (0, model.config.num_hidden_layers)
        torch.manual_seed(cfg.seed)  # LoRA A matrices are drawn from torch's global generator
        lora = LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=list(cfg.target_modules),
            layers_to_transform=None if full else list(range(*self.layers)),
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            self.model = get_peft_model(model, lora).to(self.device)
        except ValueError as exc:  # e.g. a target module the architecture does not have
            raise ConfigError(f"cannot apply LoRA: {exc}", "check target_modules against the model") from exc
        self.model.config.use_cache = False
        # Packing passes a boolean 4D attention mask, which the SDPA path hands to torch as it is.
        packable = cfg.pack_shared_head and getattr(model.config, "_attn_implementation", None) in (
            "sdpa", FP32_ATTENTION)
        self._runner = DecoderRunner(self.model, self.device, dtype, self.tokenizer.pad_token_id, packable)

    # -- train ---------------------------------------------------------------------------------------------
    def train(
        self,
        examples: Sequence[Example],
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> TrainResult:
        """Train on `examples` (in the inference chat format); raises Cancelled if `cancel` is set between steps."""
        import torch

        if self.model is None:
            raise AgentmemError("the recipe is not set up", "call setup(base_model_dir) first")
        cfg = self.config
        encoded, facts, distilled = self._encode(examples)
        rng = random.Random(cfg.seed)
        torch.manual_seed(cfg.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.lora_plus_ratio:  # LoRA+: the B matrices learn `ratio` times faster than the A matrices
            from peft.optimizers import create_loraplus_optimizer

            opt = create_loraplus_optimizer(self.model, torch.optim.AdamW, lr=cfg.lr,
                                            loraplus_lr_ratio=cfg.lora_plus_ratio, weight_decay=0.0)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        worst = [math.inf] * len(encoded)  # worst answer-token loss per example when it was last seen
        is_fact = set(facts)
        rehearse = Rotation([j for j in range(len(encoded)) if j not in is_fact], cfg.rehearsal_ratio, rng,
                            cfg.rehearsal_min)
        # chosen once, from the first epoch's rows: later epochs are smaller but keep it
        size = batch_size_for(len(facts) + rehearse.size(len(facts)), cfg.batch_size, cfg.min_batches)
        planned = total = math.ceil(len(encoded) / size) * cfg.epochs  # the lr schedule's length
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, planned))
        step = tokens = skipped = 0
        epoch_losses: list[float] = []
        epoch_tokens: list[int] = []
        stopped_early = False
        start = time.perf_counter()
        decoder = self.model.get_base_model().get_decoder()
        frozen = self._frozen_below()
        cached = self._runner.run_frozen(encoded, frozen, 4 * cfg.batch_size, cancel) if frozen else None
        learned = cfg.learned_loss
        try:
            with only_layers(decoder, frozen):
                self._teacher = self._teach(distilled, encoded, cached)
                for epoch in range(cfg.epochs):
                    if learned is not None and epoch > 0:
                        # Later steps can undo what an earlier one taught: confirm with one pass before stopping, and
                        # before the last epoch, so that rows skipped as learned but undone since train again.
                        done = all(worst[j] < learned for j in facts)
                        if done or epoch == cfg.epochs - 1:
                            self._check([j for j in facts if worst[j] < learned], encoded, cached, worst)
                            if done and all(worst[j] < learned for j in facts):
                                stopped_early = True
                                break
                    active = [j for j in facts if learned is None or worst[j] >= learned]
                    skipped += len(facts) - len(active)
                    active += rehearse.take(len(active))
                    # re-planned each epoch (rows a check finds undone add steps later), so never below `step`
                    total = step + math.ceil(len(active) / size) * (cfg.epochs - epoch)
                    losses: list[float] = []
                    self.model.train()
                    for batch in batches(active, encoded, size, rng):
                        raise_if_cancelled(cancel)
                        loss, per_example, per_worst, n_tokens = self._step(batch, encoded, cached)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                        opt.step()
                        sched.step()
                        opt.zero_grad(set_to_none=True)
                        for j, value in zip(batch, per_worst):
                            worst[j] = value
                        losses.extend(per_example)
                        step += 1
                        tokens += n_tokens
                        if progress is not None:
                            elapsed = time.perf_counter() - start
                            progress(Progress(step, total, epoch, float(loss.item()), tokens / max(elapsed, 1e-9),
                                              elapsed, elapsed / step * (total - step)))
                    epoch_losses.append(sum(losses) / max(1, len(losses)))
                    epoch_tokens.append(tokens - sum(epoch_tokens))
        finally:
            self.model.eval()
            self._teacher = {}
        seconds = time.perf_counter() - start
        self._trained = True
        unlearned = [j for j in facts if learned is not None and worst[j] >= learned]
        self.result = TrainResult(
            steps=step,
            epochs=len(epoch_losses),
            examples=len(encoded),
            tokens=tokens,
            seconds=seconds,
            tokens_per_s=tokens / max(seconds, 1e-9),
            final_loss=epoch_losses[-1] if epoch_losses else math.nan,
            stopped_early=stopped_early,
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            epoch_losses=epoch_losses,
            epoch_tokens=epoch_tokens,
            skipped=skipped,
            unlearned=len(unlearned),
            unlearned_questions=[examples[encoded[j].index].question for j in unlearned[:20]],
        )
        return self.result

    def losses(self, examples: Sequence[Example]) -> list[float]:
        """Each example's training loss under the current adapter, without training (distilled rows: KL from the
        base model, so 0 before training). Examples that cannot be encoded are left out."""
        import torch

        encoded, _, distilled = self._encode(examples)
        decoder = self.model.get_base_model().get_decoder()
        frozen = self._frozen_below()
        cached = self._runner.run_frozen(encoded, frozen, 4 * self.config.batch_size) if frozen else None
        out: list[float] = []
        try:
            with only_layers(decoder, frozen):
                self._teacher = self._teach(distilled, encoded, cached)
                with torch.no_grad():
                    for k in range(0, len(encoded), self.config.batch_size):
                        out += self._step(list(range(k, min(k + self.config.batch_size, len(encoded)))), encoded,
                                          cached)[1]
        finally:
            self._teacher = {}
        return out

    def _encode(self, examples: Sequence[Example]) -> tuple[list[Encoded], list[int], list[int]]:
        """(encoded examples, indices of fact examples, indices of those distilled from the base model)."""
        if self.model is None:
            raise AgentmemError("the recipe is not set up", "call setup(base_model_dir) first")
        cfg = self.config
        encoded = []
        for i, ex in enumerate(examples):
            enc = encode_example(self.tokenizer, ex, cfg)
            if enc is not None and any(label != IGNORE for label in enc[1][1:]):
                encoded.append(Encoded(enc[0], enc[1], i))
        if not encoded:
            raise AgentmemError("nothing to train on", f"all examples are empty or longer than {cfg.max_seq_len} tokens")
        facts = [j for j, e in enumerate(encoded) if examples[e.index].fact_id is not None]
        # Distil only beside facts: without any, every example is trained on its own answer.
        distilled = [j for j, e in enumerate(encoded) if examples[e.index].fact_id is None] if (
            cfg.distill_rehearsal and facts) else []
        for j in distilled:
            encoded[j] = Encoded(encoded[j].input_ids, distill_labels(self.tokenizer, encoded[j].input_ids, cfg),
                                  encoded[j].index)
        return encoded, facts or list(range(len(encoded))), distilled

    def _teach(self, indices: list[int], encoded: list[Encoded], cached: list[Any] | None) -> dict[int, Any]:
        """The base model's top-k next-token log-probabilities at each labelled position of `indices` (adapter off)."""
        import torch

        teacher: dict[int, Any] = {}
        if not indices:
            return teacher
        out = self.model.get_base_model().get_output_embeddings()
        self.model.eval()
        with torch.no_grad(), self.model.disable_adapter():
            for k in range(0, len(indices), self.config.batch_size):
                batch = indices[k : k + self.config.batch_size]
                hidden, target, row_of, _ = self._forward(batch, encoded, cached)
                chosen = target != IGNORE
                logp = torch.log_softmax(out(hidden[chosen]).float(), dim=-1)
                values, ids = logp.topk(self.config.distill_top_k, dim=-1)
                rows = row_of[chosen]
                for r, j in enumerate(batch):
                    teacher[j] = (ids[rows == r], values[rows == r])
        return teacher

    def _check(self, indices: list[int], encoded: list[Encoded], cached: list[Any] | None, worst: list[float]) -> None:
        """Refresh the worst answer-token loss of `indices` with a forward pass (no dropout, no gradients)."""
        import torch

        self.model.eval()
        with torch.no_grad():
            for k in range(0, len(indices), 2 * self.config.batch_size):
                batch = indices[k : k + 2 * self.config.batch_size]
                _, _, per_worst, _ = self._step(batch, encoded, cached)
                for j, value in zip(batch, per_worst):
                    worst[j] = value

    def _frozen_below(self) -> int:
        """How many bottom layers carry no LoRA and can be run once up front (0 = run the whole model each step)."""
        cfg = self.config
        if not cfg.cache_frozen or self.layers is None or self.layers[0] == 0:
            return 0
        base = self.model.get_base_model()
        # Only decoders whose forward feeds `inputs_embeds` straight into the layers (no embedding scaling).
        if getattr(base.config, "model_type", "") not in _CACHEABLE or not hasattr(base.get_decoder(), "layers"):
            return 0
        return self.layers[0]

    def _step(self, batch: list[int], encoded: list[Encoded], cached: list[Any] | None):
        """Loss = mean over examples of each one's mean answer-token loss (long rehearsal replies do not dominate);
        also each example's mean and worst answer-token loss, and the tokens run."""
        import torch
        import torch.nn.functional as F

        hidden, target, row_of, n_tokens = self._forward(batch, encoded, cached)
        chosen = target != IGNORE
        # The vocabulary projection is a fifth of the model's work per token; run it only where there is a label.
        logits = self.model.get_base_model().get_output_embeddings()(hidden[chosen]).float()
        token_loss = F.cross_entropy(logits, target[chosen], reduction="none")
        row_of = row_of[chosen]
        taught = [r for r, j in enumerate(batch) if j in self._teacher]
        if taught:  # distilled rows: KL(base || adapted) over the base model's top-k tokens, instead of cross-entropy
            mask = torch.isin(row_of, torch.tensor(taught, device=row_of.device))
            ids = torch.cat([self._teacher[batch[r]][0] for r in taught])
            ref = torch.cat([self._teacher[batch[r]][1] for r in taught])
            got = torch.log_softmax(logits[mask], dim=-1).gather(1, ids)
            token_loss = token_loss.masked_scatter(mask, topk_kl(ref, got))
        zeros = torch.zeros(len(batch), device=logits.device)
        per_example = zeros.index_add(0, row_of, token_loss) / zeros.index_add(0, row_of, torch.ones_like(token_loss))
        worst = zeros.scatter_reduce(0, row_of, token_loss.detach(), reduce="amax", include_self=False)
        return per_example.mean(), per_example.detach().cpu().tolist(), worst.cpu().tolist(), n_tokens

    def _forward(self, batch: list[int], encoded: list[Encoded], cached: list[Any] | None):
        """Hidden states, next-token labels and row index of every position of `batch` (packed when possible)."""
        return self._runner.forward(batch, encoded, cached)

    # -- save / cleanup ------------------------------------------------------------------------------------
    def save(self, out_dir: Path) -> Path:
        """Write PEFT's save_pretrained output and train_config.json into `out_dir` (new), atomically."""
        if self.model is None or not self._trained:
            raise AgentmemError("there is no trained adapter to save", "run train() to the end first")
        out_dir = Path(out_dir)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise AgentmemError(f"{out_dir} already exists and is not empty", "save each adapter to a new folder")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            self.model.save_pretrained(str(tmp))
            self.config.save(tmp)
            if self.result is not None:
                atomic_write(tmp / "train_result.json", json.dumps(self.result.to_dict(), indent=2))
            if out_dir.exists():
                out_dir.rmdir()
            os.replace(tmp, out_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return out_dir

    def cleanup(self) -> None:
        import torch

        self.model = None
        self.tokenizer = None
        self._runner = None
        if self._prev_threads is not None:
            torch.set_num_threads(self._prev_threads)
            self._prev_threads = None
        if self.device == "cuda":
            torch.cuda.empty_cache()

    def __enter__(self) -> LoraRecipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
