"""How chat examples become training rows: token ids with answer-only labels in the inference chat format,
distillation labels, length-sorted seeded batches, the prompt head a batch shares, and the rehearsal rotation."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentmem.synthesize import Example
    from agentmem.train_config import TrainConfig

IGNORE = -100  # the label of a token that is not trained


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    index: int  # position in the caller's example list

    @property
    def length(self) -> int:
        return len(self.input_ids)


def encode_example(tokenizer: Any, example: Example, config: TrainConfig) -> tuple[list[int], list[int]] | None:
    """Token ids and labels in exactly the chat format used at inference; None if the prompt alone is too long."""
    prompt = tokenizer.apply_chat_template(
        example.prompt_messages(config.system_prompt), tokenize=False, add_generation_prompt=True
    )
    if example.ends:
        full = tokenizer.apply_chat_template(example.messages(config.system_prompt), tokenize=False)
        if not full.startswith(prompt):  # a template that rewrites earlier turns: fall back to plain concatenation
            full = prompt + example.answer + (tokenizer.eos_token or "")
        completion = full[len(prompt) :]
    else:
        completion = example.answer  # a cut-short reply: no end-of-turn to learn
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if len(p_ids) >= config.max_seq_len:
        return None
    ids = (p_ids + c_ids)[: config.max_seq_len]
    labels = ([IGNORE] * len(p_ids) if config.completion_only else list(p_ids)) + c_ids
    return ids, labels[: config.max_seq_len]


def distill_labels(tokenizer: Any, ids: list[int], config: TrainConfig) -> list[int]:
    """Labels that also cover the user's turn (everything after the system prompt's own tokens), for distillation."""
    head = 0
    if config.system_prompt:
        system = tokenizer.apply_chat_template([{"role": "system", "content": config.system_prompt}], tokenize=False)
        head_ids = tokenizer(system, add_special_tokens=False)["input_ids"]
        head = len(head_ids) if ids[: len(head_ids)] == head_ids else 0
    return [IGNORE] * head + list(ids[head:])


def shared_head(rows: list[Encoded]) -> int:
    """Length of the token prefix all rows share, ending before any row's first label (and its predecessor)."""
    first = rows[0].input_ids
    n = min(r.length for r in rows)
    for r in rows:
        label_at = next((k for k, x in enumerate(r.labels) if x != IGNORE), r.length)
        n = min(n, label_at - 1)
    k = 0
    while k < n and all(r.input_ids[k] == first[k] for r in rows):
        k += 1
    return k


class Rotation:
    """Rehearsal rows handed out in a seeded order, `ratio` of the fact rows at a time (at least `minimum`),
    wrapping around, so that every row is trained about equally often; all of them each time when `ratio` is None."""

    def __init__(self, rows: list[int], ratio: float | None, rng: random.Random, minimum: int = 8):
        self.rows, self.ratio, self.minimum, self.next = list(rows), ratio, minimum, 0
        rng.shuffle(self.rows)

    def size(self, n_facts: int) -> int:
        """How many rows `take(n_facts)` hands out."""
        if self.ratio is None:
            return len(self.rows)
        return min(len(self.rows), max(self.minimum, math.ceil(self.ratio * n_facts)))

    def take(self, n_facts: int) -> list[int]:
        if self.ratio is None:
            return list(self.rows)
        k = self.size(n_facts)
        out = [self.rows[(self.next + i) % len(self.rows)] for i in range(k)]
        self.next = (self.next + k) % max(1, len(self.rows))
        return out


def batch_size_for(n_rows: int, size: int, min_batches: int) -> int:
    """`size`, or less where an epoch of `n_rows` rows would make fewer than `min_batches` batches of it: a run of one
    or two facts still makes several optimizer steps an epoch."""
    return max(1, min(size, math.ceil(n_rows / min_batches)))


def batches(active: list[int], encoded: list[Encoded], size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (little padding), in a seeded random order; ties broken by a seeded shuffle."""
    order = list(active)
    rng.shuffle(order)
    order.sort(key=lambda j: encoded[j].length)  # stable: equal lengths keep the shuffled order
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(batches)
    return batches
