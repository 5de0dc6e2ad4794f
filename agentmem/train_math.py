"""The arithmetic of a training step that needs no model: the learning-rate schedule and the distillation loss."""

from __future__ import annotations

from typing import Any


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to a tenth of the peak at the last planned step."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return max(0.1, 1.0 - 0.9 * (step - warmup) / span)


def topk_kl(ref: Any, got: Any) -> Any:
    """KL(base || adapted) per token over the base model's top-k tokens plus one bucket for all the others: exact
    for that coarser distribution, 0 when the two models agree. `ref`, `got`: (tokens, k) log-probabilities."""
    import torch

    def tail(logp: Any) -> Any:
        return torch.log((1 - logp.exp().sum(-1)).clamp(min=1e-6))

    ref_tail = tail(ref)
    return (ref.exp() * (ref - got)).sum(-1) + ref_tail.exp() * (ref_tail - tail(got))
