"""A deterministic stand-in for the embedding model in unit tests (never shipped in the package).

Words are hashed into a fixed number of buckets and the count vector is L2-normalized, so texts sharing words are
close in cosine space: enough to test that search returns the right source. Tokens are whitespace words.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np


class FakeEmbedder:
    name = "fake-bow"
    dim = 64
    max_tokens = 128

    def __init__(self) -> None:
        self.calls: list[int] = []  # batch sizes, to check batching

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[row, 0] += 1e-3  # never the zero vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]
