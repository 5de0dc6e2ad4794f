"""The golden regression set that ships with agentmem, and how an adapter is scored against it.

Three parts (agentmem/data/golden.json): general prompts, scored by agreement (token F1) of the adapter's greedy
answer with the base model's own answer; multiple-choice items, scored by log-likelihood of each choice
(accuracy, and agreement with the base model's choice); canaries, which must keep their answer. The base model's
references are computed once per base model and cached under the data folder. This module decides nothing about
promotion (see `agentmem.gate`) and never reads ../shared.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from agentmem.llm.base import GenerationConfig, LLMBackend
from agentmem.normalize import contains_answer, token_f1

GENERAL_TOKENS = 48  # enough to compare behaviour; longer answers only cost time


@dataclass(frozen=True)
class Golden:
    canaries: list[dict]
    general: list[str]
    multiple_choice: list[dict]


@cache
def load_golden() -> Golden:
    raw = json.loads(resources.files("agentmem").joinpath("data", "golden.json").read_text(encoding="utf-8"))
    return Golden(raw["canaries"], raw["general"], raw["multiple_choice"])


def mc_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def choose(backend: LLMBackend, question: str, choices: list[str], adapter: str | None) -> int:
    """Index of the most likely choice, by mean log-probability per token (robust to choice length)."""
    scores = backend.score_continuations(mc_prompt(question), [" " + c for c in choices], adapter=adapter)
    return max(range(len(choices)), key=lambda i: scores[i][0] / max(1, scores[i][1]))


def chat_messages(prompt: str, system: str | None) -> list[dict]:
    """One user turn, after the system prompt when there is one."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


MATCHING = 2


def base_references(backend: LLMBackend, cache_dir: Path, model_id: str, system: str | None = None) -> dict[str, Any]:
    """The base model's own answers and choices on the golden set, cached per (model, system prompt)."""
    golden = load_golden()
    # MATCHING: the version of how a canary answer is matched (2: possessives read as their noun), so references
    # cached under an older rule are recomputed
    key = hashlib.sha256(json.dumps([model_id, system, GENERAL_TOKENS, golden.general, golden.multiple_choice,
                                     golden.canaries, MATCHING]).encode()).hexdigest()[:16]
    path = cache_dir / f"golden-{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = GenerationConfig(max_new_tokens=GENERAL_TOKENS)
    general = [g.text for g in backend.generate_batch([chat_messages(p, system) for p in golden.general], cfg)]
    canary = [g.text for g in backend.generate_batch([chat_messages(c["prompt"], system) for c in golden.canaries], cfg)]
    refs = {
        "general": general,
        "canary_answers": canary,
        "mc_choice": [choose(backend, m["question"], m["choices"], None) for m in golden.multiple_choice],
        # a canary counts only where the base model itself gets it right
        "canaries_ok": [contains_answer(a, c["answers"]) for a, c in zip(canary, golden.canaries)],
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(refs))
    os.replace(tmp, path)
    return refs


def score_general(backend: LLMBackend, adapter: str | None, refs: dict[str, Any], system: str | None = None) -> dict:
    """Regression metrics of `adapter` (None: the base model, which agrees with itself by construction)."""
    golden = load_golden()
    cfg = GenerationConfig(max_new_tokens=GENERAL_TOKENS)
    # the base model's answers are the drafts: an adapter that still gives them is confirmed in one pass
    answers = [g.text for g in backend.generate_batch([chat_messages(p, system) for p in golden.general], cfg, adapter,
                                                      drafts=refs["general"])]
    agreement = [token_f1(a, [r]) for a, r in zip(answers, refs["general"])]
    picks = [choose(backend, m["question"], m["choices"], adapter) for m in golden.multiple_choice]
    kept = [k for k, ok in enumerate(refs["canaries_ok"]) if ok]
    canaries = [golden.canaries[k] for k in kept]
    base_canary = refs.get("canary_answers")  # absent from references cached before they were kept
    canary_answers = [g.text for g in backend.generate_batch(
        [chat_messages(c["prompt"], system) for c in canaries], cfg, adapter,
        drafts=[base_canary[k] for k in kept] if base_canary else None)] if canaries else []
    failed = [(c["prompt"], a) for c, a in zip(canaries, canary_answers) if not contains_answer(a, c["answers"])]
    base_acc = statistics.fmean(int(p == m["gold"]) for p, m in zip(refs["mc_choice"], golden.multiple_choice))
    return {
        "general_agreement": round(statistics.fmean(agreement), 4),
        "mc_accuracy": round(statistics.fmean(int(p == m["gold"]) for p, m in zip(picks, golden.multiple_choice)), 4),
        "mc_accuracy_base": round(base_acc, 4),
        "mc_agreement": round(statistics.fmean(int(p == r) for p, r in zip(picks, refs["mc_choice"])), 4),
        "canaries_passed": len(canaries) - len(failed),
        "canaries_total": len(canaries),
        "canary_failures": [prompt for prompt, _ in failed],
        "canary_failure_answers": [answer[:200] for _, answer in failed],  # what the adapter said instead
    }
