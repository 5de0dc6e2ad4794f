"""In-process transformers + PEFT backend: the embedded default.

One model in memory, LoRA adapters loaded beside it under serving names and chosen per request. Generation is
serialized by a lock (on 2 CPU cores parallel decoding buys nothing and PEFT's active adapter is model state), so
unloading an adapter waits for requests in flight on it. It does not batch concurrent requests; vLLM does that.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from agentmem.errors import AgentmemError, ModelError
from agentmem.llm.base import ChatMessage, Generation, GenerationConfig, LLMBackend, row_configs
from agentmem.llm.fairlock import FairRLock
from agentmem.llm.stops import StopTrimmer, trim_at_stop
from agentmem.settings import Settings

# Draft checks compute full-vocabulary logits at every position: 16 rows of ~120 tokens are ~380 MB in float32.
VERIFY_ROWS = 16


def pick_device(preference: str = "auto") -> str:
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelError("AGENTMEM_DEVICE=cuda but no CUDA GPU is visible", "unset AGENTMEM_DEVICE or use cpu")
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def pick_dtype(device: str, preference: str = "auto"):
    import torch

    if preference == "auto":  # fp32 is the fast dtype on CPUs without bf16 units
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, preference)


class TransformersBackend(LLMBackend):
    name = "transformers"

    def __init__(self, model_path: Path, *, device: str = "auto", dtype: str = "auto", threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in a CLI and in logs
        if threads:
            torch.set_num_threads(threads)
        self.model_path = Path(model_path)
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
        except Exception as exc:
            raise ModelError(
                f"cannot load the base model at {self.model_path}: {str(exc).splitlines()[0][:200]}",
                "run `agentmem init`, or point AGENTMEM_BASE_MODEL at a local Hugging Face model folder",
            ) from exc
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._base = model.to(self.device).eval()
        self._model = self._base  # becomes a PeftModel once an adapter is loaded
        self._adapters: dict[str, str] = {}
        self._lock = FairRLock()  # first come, first served: no request starves under load

    @classmethod
    def from_settings(cls, settings: Settings) -> TransformersBackend:
        from agentmem.bootstrap import base_model_path

        return cls(base_model_path(settings), device=settings.device, dtype=settings.dtype, threads=settings.threads)

    # -- prompts -------------------------------------------------------------------------------------------
    def encode(self, messages: Sequence[ChatMessage]):
        if not messages:
            raise AgentmemError("no messages to answer", "pass at least one user message")
        enc = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def _gen_kwargs(self, config: GenerationConfig) -> dict:
        import torch

        kwargs: dict = dict(
            max_new_tokens=config.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=not config.greedy,
        )
        if config.greedy:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=None)
            if config.seed is not None:
                torch.manual_seed(config.seed)
        if config.stop:
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        return kwargs

    @contextlib.contextmanager
    def _using(self, adapter: str | None):
        """Select the adapter for one request; caller holds the lock."""
        if adapter is not None and adapter not in self._adapters:
            raise AgentmemError(f"adapter {adapter!r} is not loaded", f"loaded: {sorted(self._adapters) or 'none'}")
        if self._model is self._base:
            yield self._base
        elif adapter is None:
            with self._model.disable_adapter():
                yield self._model
        else:
            self._model.set_adapter(adapter)
            yield self._model

    # -- generation ----------------------------------------------------------------------------------------
    def generate(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Generation:
        import torch

        config = config or GenerationConfig()
        inputs = self.encode(messages)
        n_prompt = int(inputs["input_ids"].shape[1])
        start = time.perf_counter()
        with self._lock, self._using(adapter) as model, torch.inference_mode():
            out = model.generate(**inputs, **self._gen_kwargs(config))
        new = out[0][n_prompt:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text, hit_stop = trim_at_stop(text, config.stop)
        eos_ids = self._eos_ids()
        ended = hit_stop or (len(new) > 0 and int(new[-1]) in eos_ids) or len(new) < config.max_new_tokens
        return Generation(
            text=text,
            adapter=adapter,
            prompt_tokens=n_prompt,
            completion_tokens=int(len(new)),
            seconds=time.perf_counter() - start,
            finish_reason="stop" if ended else "length",
        )

    def stream(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        config = config or GenerationConfig()
        inputs = self.encode(messages)
        abandoned = threading.Event()

        class _Abandoned(StoppingCriteria):  # a consumer that stops reading must not hold the lock forever
            def __call__(self, input_ids, scores, **kwargs):
                return abandoned.is_set()

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        failure: list[BaseException] = []
        ready = threading.Event()

        def run() -> None:
            import torch

            try:
                with self._lock, self._using(adapter) as model, torch.inference_mode():
                    ready.set()
                    model.generate(
                        **inputs,
                        **self._gen_kwargs(config),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Abandoned()]),
                    )
            except BaseException as exc:  # surfaced to the consumer below
                failure.append(exc)
                streamer.end()
            finally:
                ready.set()

        worker = threading.Thread(target=run, name="agentmem-generate", daemon=True)
        worker.start()
        trimmer = StopTrimmer(config.stop)
        try:
            for piece in streamer:
                out = trimmer.feed(piece)
                if out:
                    yield out
                if trimmer.stopped:
                    break
            rest = trimmer.flush()
            if rest:
                yield rest
            if failure:
                raise failure[0]
        finally:
            abandoned.set()
            worker.join(timeout=60)

    def generate_batch(
        self, batch: Sequence[Sequence[ChatMessage]], config: GenerationConfig | None = None, adapter: str | None = None,
        *, batch_size: int = 32, drafts: Sequence[str | None] | None = None, budgets: Sequence[int] | None = None,
    ) -> list[Generation]:
        """Left-padded batched decoding: on CPU a batch of 16 costs little more than one conversation, and 32 rows
        decode 1.37x faster than two batches of 16 (64 rows x 48 tokens: 22.8 s in 16s, 16.6 s in 32s, 12.3 s in one
        64; 2 cores, `bench/generate.py --batch-sizes 16,32,64 --tokens 48`). 32, not 64: a batch holds the model
        while it decodes, so chats wait behind at most one.

        `drafts` (greedy decoding without stop strings only): a guess of each reply, checked in one teacher-forced
        pass. Where greedy decoding would produce the draft, it is taken as it is; elsewhere decoding resumes from
        the first token where greedy decoding leaves it. Either way the text is greedy decoding's, so evaluation
        of answers that are mostly known in advance (a trained fact's statement) costs a forward pass, not one
        decoding step per token.

        `budgets`: each conversation's own token budget (at most `config.max_new_tokens`); rows are batched in
        budget order, so one call with mixed budgets fills its batches where one call per budget would not."""
        config = config or GenerationConfig()
        if not batch:
            return []
        prompts = [self._prompt_ids(m) for m in batch]
        configs = row_configs(len(batch), config, budgets)
        caps = [c.max_new_tokens for c in configs]
        start = time.perf_counter()
        if drafts is not None and config.greedy and not config.stop:
            if len(drafts) != len(batch):
                raise AgentmemError("generate_batch needs one draft (or None) per conversation", "pass equal lengths")
            heads = self._verify_drafts(prompts, drafts, caps, adapter, min(batch_size, VERIFY_ROWS))
        else:
            heads = [[] for _ in batch]
        eos_ids = self._eos_ids()
        todo = [i for i, h in enumerate(heads) if len(h) < caps[i] and not (h and h[-1] in eos_ids)]
        tails = self._decode_ids([prompts[i] + heads[i] for i in todo], [caps[i] - len(heads[i]) for i in todo],
                                 config, adapter, batch_size)
        for i, tail in zip(todo, tails):
            heads[i] = heads[i] + tail
        seconds = (time.perf_counter() - start) / len(batch)
        return [self._finish(new, len(p), row, adapter, seconds) for new, p, row in zip(heads, prompts, configs)]

    def _prompt_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        if not messages:
            raise AgentmemError("no messages to answer", "pass at least one user message")
        text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _verify_drafts(self, prompts: list[list[int]], drafts: Sequence[str | None], budgets: list[int],
                       adapter: str | None, batch_size: int) -> list[list[int]]:
        """Per row, the tokens greedy decoding is known to produce: the draft's tokens (and the end-of-turn token)
        up to the first position where the argmax differs, plus that argmax token."""
        import torch

        end = self._end_of_turn()
        rows = [(i, self.tokenizer(d, add_special_tokens=False)["input_ids"] + [end]) for i, d in enumerate(drafts)
                if d]
        heads: list[list[int]] = [[] for _ in prompts]
        pad = self.tokenizer.pad_token_id
        for k in range(0, len(rows), batch_size):
            chunk = rows[k : k + batch_size]
            seqs = [prompts[i] + d for i, d in chunk]
            width = max(len(x) for x in seqs)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x in seqs], device=self.device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs], device=self.device)
            with self._lock, self._using(adapter) as model, torch.inference_mode():
                logits = model(input_ids=ids, attention_mask=mask).logits
            for r, (i, draft) in enumerate(chunk):
                n = len(prompts[i])
                picks = logits[r, n - 1 : n - 1 + len(draft)].argmax(-1).tolist()
                agree = next((j for j, (a, b) in enumerate(zip(picks, draft)) if a != b), len(draft))
                heads[i] = (draft[:agree] + picks[agree : agree + 1])[: budgets[i]]
        return heads

    def _decode_ids(self, prompts: list[list[int]], budgets: list[int], config: GenerationConfig,
                    adapter: str | None, batch_size: int) -> list[list[int]]:
        """New tokens of each row (at most its budget), decoded in left-padded batches of similar budget."""
        import torch

        out: list[list[int]] = [[] for _ in prompts]
        order = sorted(range(len(prompts)), key=lambda i: budgets[i])
        pad = self.tokenizer.pad_token_id
        eos_ids = self._eos_ids()
        for k in range(0, len(order), batch_size):
            chunk = order[k : k + batch_size]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in chunk], device=self.device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in chunk],
                                device=self.device)
            kwargs = self._gen_kwargs(replace(config, max_new_tokens=max(budgets[i] for i in chunk)))
            with self._lock, self._using(adapter) as model, torch.inference_mode():
                gen = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            for row, i in zip(gen, chunk):
                new = [int(t) for t in row[width:]][: budgets[i]]
                while new and new[-1] == pad and new[-1] not in eos_ids:
                    new.pop()
                out[i] = new
        return out

    def _finish(self, new: list[int], n_prompt: int, config: GenerationConfig, adapter: str | None,
                seconds: float) -> Generation:
        eos_ids = self._eos_ids()
        n = next((j + 1 for j, t in enumerate(new) if t in eos_ids), len(new))
        text, hit_stop = trim_at_stop(self.tokenizer.decode(new[:n], skip_special_tokens=True), config.stop)
        ended = hit_stop or n < len(new) or bool(n and new[n - 1] in eos_ids) or n < config.max_new_tokens
        return Generation(text=text, adapter=adapter, prompt_tokens=n_prompt, completion_tokens=n, seconds=seconds,
                          finish_reason="stop" if ended else "length")

    def _end_of_turn(self) -> int:
        """The token that ends an assistant turn: the generation config's first end-of-sequence id."""
        ids = self._base.generation_config.eos_token_id
        first = ids[0] if isinstance(ids, list) and ids else ids
        return int(first if first is not None else self.tokenizer.eos_token_id)

    def score_continuations(
        self, prompt: str, continuations: Sequence[str], adapter: str | None = None
    ) -> list[tuple[float, int]]:
        import torch

        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        rows = [prompt_ids + self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=self.device)
        with self._lock, self._using(adapter) as model, torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # position p predicts token p + 1
        out = []
        for i, r in enumerate(rows):
            target = torch.tensor(r[len(prompt_ids) :], device=self.device)
            positions = torch.arange(len(prompt_ids) - 1, len(r) - 1, device=self.device)
            out.append((float(logprobs[i, positions, target].sum()), len(target)))
        return out

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _eos_ids(self) -> set[int]:
        ids = self._base.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        return {int(i) for i in ids if i is not None} | {int(self.tokenizer.eos_token_id)}

    # -- adapters ------------------------------------------------------------------------------------------
    def load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        folder = Path(path)
        if not (folder / "adapter_config.json").is_file():
            raise ModelError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)", "check the adapter path")
        with self._lock:
            if name in self._adapters:
                if self._adapters[name] == str(folder):
                    return
                raise AgentmemError(f"adapter name {name!r} is already loaded from {self._adapters[name]}",
                                    "every adapter version needs a new serving name")
            try:
                if self._model is self._base:
                    self._model = PeftModel.from_pretrained(self._base, folder, adapter_name=name, is_trainable=False)
                else:
                    self._model.load_adapter(folder, adapter_name=name, is_trainable=False)
            except Exception as exc:
                raise ModelError(f"cannot load adapter {folder}: {str(exc).splitlines()[0][:200]}",
                                 "was it trained for this base model?") from exc
            self._model.eval()
            self._adapters[name] = str(folder)

    def unload_adapter(self, name: str) -> None:
        with self._lock:  # waits for the request in flight, which holds the lock
            if name not in self._adapters:
                return
            if len(self._adapters) == 1:  # the last one: drop the LoRA layers and serve the plain base again
                self._base = self._model.unload()
                self._model = self._base
            else:
                self._model.delete_adapter(name)
            del self._adapters[name]

    def adapters(self) -> list[str]:
        return sorted(self._adapters)  # no lock: must answer while a long generation runs

    def info(self) -> dict:
        return {
            "backend": self.name,
            "model": str(self.model_path),
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "adapters": sorted(self._adapters),
        }
