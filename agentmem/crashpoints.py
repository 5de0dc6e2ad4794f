"""Named kill points for the crash-safety tests.

`AGENTMEM_CRASH_AT=NAME` makes the process SIGKILL itself the first time it reaches `crash_point(NAME)`;
`NAME@N` waits for the N-th time (e.g. `train.step@3`, `ingest.file@2`). Several points may be given, comma
separated. Unset (always, outside tests), a crash point costs one environment lookup.

Points (grep for `crash_point(` to see them in place):
  consolidation stages   select, filter, synthesize, train, evaluate, gate, publish; train.step@N (after step N);
                         published (adapter registered, facts not yet marked)
  adapter registry       registry.moved (folder renamed into place, row not committed), registry.rollback
  ingestion              ingest.flush@N (the N-th batch of chunks reached Chroma, its files not yet recorded)
  memory                 memory.fact (a taught fact written to the log, not yet to the memory collection)
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "AGENTMEM_CRASH_AT"
_hits: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    with _lock:
        count = _hits[name] = _hits.get(name, 0) + 1
    for item in spec.split(","):
        point, _, nth = item.strip().partition("@")
        if point == name and count == (int(nth) if nth else 1):
            os.kill(os.getpid(), signal.SIGKILL)
