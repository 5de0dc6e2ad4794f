"""A re-entrant lock that serves waiters in arrival order.

The in-process backend runs one request at a time. With `threading.RLock` a release hands the lock to whichever
waiter the OS wakes first, so under steady chat traffic a request could wait indefinitely (seen: a consolidation
run's evaluation, many short calls, starved by 16 chatting clients). Here each waiter takes a ticket and is served
in turn, so a request waits at most for those that arrived before it.
"""

from __future__ import annotations

import collections
import threading


class FairRLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._queue: collections.deque[int] = collections.deque()

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            self._queue.append(me)
            while self._owner is not None or self._queue[0] != me:
                self._cond.wait()
            self._queue.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def __enter__(self) -> FairRLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
