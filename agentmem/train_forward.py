"""How training rows run through the decoder: right-padded, or with the prompt head they share run once and handed to
every row as a key/value cache; frozen bottom layers run once up front; all in the recipe's mixed precision.

It computes hidden states and next-token labels only: losses, the optimizer and which rows to run are the recipe's
(agentmem.training).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator
from typing import Any

from agentmem.errors import AgentmemError
from agentmem.train_precision import mixed_precision
from agentmem.train_rows import IGNORE, Encoded, shared_head


class Cancelled(AgentmemError):
    """Training was cancelled between steps; nothing was saved."""

    exit_code = 130


def raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("training was cancelled", "nothing was saved; start a new run when ready")


class DecoderRunner:
    """Runs batches of encoded rows through a (PEFT-wrapped) causal LM's decoder."""

    def __init__(self, model: Any, device: str, dtype: Any, pad_id: int | None, packable: bool):
        self.model, self.device, self.dtype = model, device, dtype
        self.pad_id = pad_id if pad_id is not None else 0
        self.packable = packable  # the attention path takes an explicit boolean 4D mask as it is (SDPA)

    @property
    def decoder(self) -> Any:
        return self.model.get_base_model().get_decoder()

    def forward(self, batch: list[int], encoded: list[Encoded], cached: list[Any] | None):
        """(hidden states, next-token labels, row index of each position, tokens run) for the rows `batch`."""
        rows = [encoded[j] for j in batch]
        shared = shared_head(rows) if self.packable else 0
        with mixed_precision(self.model, self.device, self.dtype):
            if shared > 0 and len(rows) > 1:
                return self._shared_head(batch, rows, cached, shared)
            return self._padded(batch, rows, cached)

    def run_frozen(self, encoded: list[Encoded], frozen: int, chunk_size: int,
                   cancel: threading.Event | None = None) -> list[Any]:
        """Hidden states entering layer `frozen`, per row (unpadded), computed once without gradients."""
        import torch

        decoder = self.decoder
        captured: list[Any] = []
        hook = decoder.norm.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        out: list[Any] = [None] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda j: encoded[j].length)
        try:
            with torch.no_grad(), only_layers(decoder, -frozen), mixed_precision(self.model, self.device, self.dtype):
                for k in range(0, len(order), chunk_size):
                    raise_if_cancelled(cancel)
                    chunk = order[k : k + chunk_size]
                    ids, _, mask = self.pad([encoded[j] for j in chunk])
                    captured.clear()
                    decoder(input_ids=ids, attention_mask=mask)
                    for r, j in enumerate(chunk):
                        out[j] = captured[0][r, : encoded[j].length].clone()
        finally:
            hook.remove()
        return out

    def pad(self, rows: list[Encoded]):
        """Right-padded (input ids, labels, attention mask) on the device."""
        import torch

        width = max(r.length for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : row.length] = torch.tensor(row.input_ids)
            labels[r, : row.length] = torch.tensor(row.labels)
            mask[r, : row.length] = 1
        return ids.to(self.device), labels.to(self.device), mask.to(self.device)

    def _padded(self, batch: list[int], rows: list[Encoded], cached: list[Any] | None):
        import torch

        ids, labels, mask = self.pad(rows)
        if cached is None:
            hidden = self.decoder(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            states = torch.nn.utils.rnn.pad_sequence([cached[j] for j in batch], batch_first=True)
            hidden = self.decoder(inputs_embeds=states, attention_mask=mask).last_hidden_state
        target = labels[:, 1:]
        row_of = torch.arange(len(rows), device=ids.device)[:, None].expand_as(target)
        return hidden[:, :-1], target, row_of, int(mask.sum().item())

    def _shared_head(self, batch: list[int], rows: list[Encoded], cached: list[Any] | None, shared: int):
        """The prompt head all rows share (system prompt, turn markers) runs once; its keys and values are handed
        to every row as a cache, and the rows' rests run as one right-padded batch after it. Each row sees exactly
        what it would alone, so the loss is the padded batch's, with the head computed once instead of once per
        row. (A single packed sequence with a block mask costs the same linear work, but CPU attention cannot skip
        the masked blocks: it spent more time in attention than in every matrix product together.)"""
        import torch
        from transformers import DynamicCache

        dev, decoder = self.device, self.decoder
        kv = DynamicCache(config=self.model.get_base_model().config)
        # transformers 5 renamed the decoder's `past_key_values` argument to `cache`
        pass_kv = {"cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values": kv,
                   "use_cache": True}
        if cached is None:
            decoder(input_ids=torch.tensor([rows[0].input_ids[:shared]], device=dev), **pass_kv)
        else:
            decoder(inputs_embeds=cached[batch[0]][:shared][None], **pass_kv)
        kv.batch_repeat_interleave(len(rows))
        ids, labels, mask = self.pad([Encoded(r.input_ids[shared:], r.labels[shared:], r.index) for r in rows])
        width = ids.shape[1]
        # An explicit (rows, 1, tail, head + tail) mask, True = may attend: the whole head, then causal over the
        # row's own tokens. (Left to transformers, a cache whose first layers are empty sizes the mask wrongly.)
        causal = torch.ones(width, width, dtype=torch.bool, device=dev).tril()[None] & mask.bool()[:, None, :]
        mask_all = torch.cat([torch.ones(len(rows), width, shared, dtype=torch.bool, device=dev), causal], dim=2)
        position_ids = torch.arange(shared, shared + width, device=dev)[None].expand(len(rows), -1)
        if cached is None:
            out = decoder(input_ids=ids, attention_mask=mask_all[:, None], position_ids=position_ids, **pass_kv)
        else:
            states = torch.nn.utils.rnn.pad_sequence([cached[j][shared:] for j in batch], batch_first=True)
            out = decoder(inputs_embeds=states, attention_mask=mask_all[:, None], position_ids=position_ids,
                          **pass_kv)
        target = labels[:, 1:]  # tail position k predicts tail token k + 1; the head predicts no label
        row_of = torch.arange(len(rows), device=dev)[:, None].expand_as(target)
        return out.last_hidden_state[:, :-1], target, row_of, int(mask.sum().item()) + shared


@contextlib.contextmanager
def only_layers(decoder: Any, split: int) -> Iterator[None]:
    """Run the decoder on a slice of its layers: split > 0 keeps layers[split:], split < 0 keeps layers[:-split]."""
    if split == 0:
        yield
        return
    full = decoder.layers
    decoder.layers = type(full)(list(full)[split:] if split > 0 else list(full)[:-split])
    try:
        yield
    finally:
        decoder.layers = full
