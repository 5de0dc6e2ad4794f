"""MicroBatchingBackend: concurrent requests are answered together, each gets its own answer, errors reach every
waiter of the failed batch and the worker keeps serving."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentmem.llm.base import GenerationConfig
from agentmem.llm.batching import MicroBatchingBackend
from tests.fakes import FakeBackend


class CountingBackend(FakeBackend):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.batch_calls: list[int] = []
        self.gate = threading.Event()

    def generate_batch(self, batch, config=None, adapter=None, *, drafts=None, budgets=None):
        self.batch_calls.append(len(batch))
        return [self.generate(m, config, adapter) for m in batch]


def ask(backend, q, adapter=None, config=None):
    return backend.generate([{"role": "user", "content": q}], config, adapter).text


def test_concurrent_requests_share_batches_and_get_their_own_answers():
    inner = CountingBackend({f"<q{i}>": f"answer {i}" for i in range(32)})
    b = MicroBatchingBackend(inner, max_batch=8, wait_s=0.2)
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda i: ask(b, f"<q{i}>?"), range(32)))
    assert answers == [f"answer {i}" for i in range(32)]
    assert sum(inner.batch_calls) == 32 and max(inner.batch_calls) > 1 and max(inner.batch_calls) <= 8
    assert "".join(b.stream([{"role": "user", "content": "<q3>"}])) == "answer 3"
    b.close()


def test_requests_for_different_adapters_or_configs_are_not_mixed():
    inner = CountingBackend({"q": "base"})
    inner.load_adapter("a1", "/x")
    inner.teach("a1", {"q": "adapted"})
    b = MicroBatchingBackend(inner, max_batch=16, wait_s=0.2)
    jobs = [(None, None), ("a1", None), (None, GenerationConfig(max_new_tokens=1)), ("a1", None)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda j: ask(b, "q", *j), jobs))
    assert got == ["base", "adapted", "base", "adapted"]
    assert sorted(inner.batch_calls) == [1, 1, 2]
    b.close()


def test_an_error_reaches_its_waiters_and_the_worker_survives():
    inner = CountingBackend({"q": "fine"})
    b = MicroBatchingBackend(inner, wait_s=0.01)
    with pytest.raises(KeyError):
        ask(b, "q", adapter="not-loaded")
    assert ask(b, "q") == "fine"
    b.close()
