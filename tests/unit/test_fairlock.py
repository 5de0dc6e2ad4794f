"""FairRLock: re-entrant, exclusive, and waiters are served in the order they arrived."""

import threading
import time

import pytest

from agentmem.llm.fairlock import FairRLock


def test_reentrant_and_exclusive():
    lock = FairRLock()
    with lock, lock:  # the owner may take it again
        got = []
        t = threading.Thread(target=lambda: (lock.acquire(), got.append(1), lock.release()))
        t.start()
        time.sleep(0.1)
        assert got == []  # another thread waits while it is held, even after one inner release
    t.join(2)
    assert got == [1]
    with pytest.raises(RuntimeError):
        lock.release()


def test_waiters_are_served_in_arrival_order():
    lock = FairRLock()
    order = []
    lock.acquire()
    threads = []
    for i in range(8):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # arrive one after the other
    lock.release()
    for t in threads:
        t.join(5)
    assert order == list(range(8))
