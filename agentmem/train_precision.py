"""Which number format training computes in, and the mixed-precision plumbing that makes bf16 pay on a CPU.

On CUDA, and on CPUs with bf16 matrix units (Intel AMX or AVX512-BF16), "auto" trains with the base weights in
bfloat16 and the LoRA weights in float32 (PEFT keeps adapter weights in float32), matrix products in bf16 under
autocast. On such CPUs attention runs in float32: torch's CPU attention kernels are slower in bf16 than in fp32
(a training step spent more time in bf16 attention backward than in all its matrix products). Elsewhere training is
plain float32. This module does not choose the serving dtype: single-stream decoding is faster in fp32 on the same
CPUs (see agentmem.llm.transformers_backend.pick_dtype).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

FP32_ATTENTION = "agentmem_sdpa_fp32"


def cpu_has_bf16_units() -> bool:
    """True where this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16)."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in probes if hasattr(torch.cpu, name))
    except Exception:  # a torch build without the probes: assume the plain fp32 path
        return False


def training_dtype(device: str, preference: str = "auto") -> Any:
    """The dtype the base weights are held in while training (adapter weights stay float32)."""
    import torch

    if preference != "auto":
        return getattr(torch, preference)
    if device == "cuda" or (device == "cpu" and cpu_has_bf16_units()):
        return torch.bfloat16
    return torch.float32


def attention_for(device: str, dtype: Any) -> str | None:
    """The attention implementation to load the model with, or None for transformers' default."""
    import torch

    if device != "cpu" or dtype == torch.float32:
        return None
    _register_fp32_attention()
    return FP32_ATTENTION


@contextlib.contextmanager
def mixed_precision(model: Any, device: str, dtype: Any) -> Iterator[None]:
    """Autocast to `dtype` with PEFT's casting of LoRA inputs to float32 turned off, so the small adapter products
    run in bf16 too while their float32 weights get the gradients. A no-op for float32 models."""
    import torch

    if dtype == torch.float32:
        yield
        return
    from peft.helpers import disable_input_dtype_casting

    with torch.autocast(device_type=device, dtype=dtype), disable_input_dtype_casting(model):
        yield


_registered = False


def _register_fp32_attention() -> None:
    """Register scaled-dot-product attention computed in float32 (inputs cast up, output cast back)."""
    global _registered
    if _registered:
        return
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def sdpa_fp32(module, query, key, value, attention_mask, **kwargs):
        with torch.autocast(device_type=query.device.type, enabled=False):
            out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask,
                                                  **kwargs)
        return out.to(query.dtype), weights

    AttentionInterface.register(FP32_ATTENTION, sdpa_fp32)
    AttentionMaskInterface.register(FP32_ATTENTION, sdpa_mask)
    _registered = True
