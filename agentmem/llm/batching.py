"""A backend wrapper that answers concurrent requests together: threads that call `generate` or `stream` at about
the same time are grouped (same adapter, same generation config) and decoded as one batch by the wrapped backend's
`generate_batch`. On a CPU a batch of 16 short answers costs little more than one, so many concurrent asks (the
`eval rag` workers, many chats) finish several times sooner.

The trade: `stream` yields the whole answer as one piece (no token-by-token streaming), and a request may wait up to
`wait_s` for company. Greedy answers can differ from unbatched ones in rare near-ties (left padding changes float
summation order). Everything else (adapters, scoring, token counts) passes through to the wrapped backend.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from agentmem.llm.base import ChatMessage, Generation, GenerationConfig, LLMBackend


@dataclass
class _Request:
    messages: Sequence[ChatMessage]
    config: GenerationConfig
    adapter: str | None
    future: Future = field(default_factory=Future)


class MicroBatchingBackend(LLMBackend):
    def __init__(self, inner: LLMBackend, *, max_batch: int = 16, wait_s: float = 0.05):
        if max_batch < 1 or wait_s < 0:
            raise ValueError("max_batch must be >= 1 and wait_s >= 0")
        self.inner, self.max_batch, self.wait_s = inner, max_batch, wait_s
        self.name = f"{inner.name}+batching"
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="micro-batcher", daemon=True)
        self._worker.start()
        self.batches: list[int] = []  # sizes of the batches run (for tests and benchmarks)

    # -- the batched path --------------------------------------------------------------------------------------
    def generate(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Generation:
        req = _Request(list(messages), config or GenerationConfig(), adapter)
        self._queue.put(req)
        return req.future.result()

    def stream(
        self, messages: Sequence[ChatMessage], config: GenerationConfig | None = None, adapter: str | None = None
    ) -> Iterator[str]:
        text = self.generate(messages, config, adapter).text
        if text:
            yield text

    def _collect(self, first: _Request) -> list[_Request]:
        group = [first]
        deadline = time.monotonic() + self.wait_s
        while len(group) < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                nxt = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)  # close() again after this batch
                break
            group.append(nxt)
            deadline = time.monotonic() + self.wait_s  # more are arriving: wait a little longer for the rest
        return group

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            requests = self._collect(first)
            groups: dict[tuple, list[_Request]] = {}
            for r in requests:
                groups.setdefault((r.adapter, r.config), []).append(r)
            for (adapter, config), rows in groups.items():
                self.batches.append(len(rows))
                try:
                    results = self.inner.generate_batch([r.messages for r in rows], config, adapter)
                except BaseException as exc:  # every waiter gets the error, the worker keeps serving
                    for r in rows:
                        r.future.set_exception(exc)
                    continue
                for r, g in zip(rows, results):
                    r.future.set_result(g)

    # -- passed through ----------------------------------------------------------------------------------------
    def generate_batch(self, batch, config=None, adapter=None, *, drafts=None, budgets=None) -> list[Generation]:
        return self.inner.generate_batch(batch, config, adapter, drafts=drafts, budgets=budgets)

    def score_continuations(self, prompt, continuations, adapter=None):
        return self.inner.score_continuations(prompt, continuations, adapter)

    def load_adapter(self, name: str, path: str) -> None:
        self.inner.load_adapter(name, path)

    def unload_adapter(self, name: str) -> None:
        self.inner.unload_adapter(name)

    def adapters(self) -> list[str]:
        return self.inner.adapters()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def info(self) -> dict:
        return self.inner.info() | {"batching": {"max_batch": self.max_batch, "wait_s": self.wait_s}}

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)
        self.inner.close()
