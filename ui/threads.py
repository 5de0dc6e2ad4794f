"""The app's list of chat threads per pool (id, title, last use), so a person can switch and resume.

The conversation itself lives in the agent's checkpointer (graphs.agent); this is only an index for the thread
picker, kept in one small JSON file under the data folder and rewritten atomically. It does not store
messages.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_THREADS = 200  # per pool: the picker shows the most recent ones
TITLE_CHARS = 60


@dataclass
class ThreadEntry:
    id: str
    title: str
    updated: float

    def label(self) -> str:
        return f"{self.title} · {time.strftime('%b %d %H:%M', time.localtime(self.updated))}"


class ThreadIndex:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, list[dict]]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def list(self, pool: str) -> list[ThreadEntry]:
        """Most recently used first."""
        with self._lock:
            rows = self._read().get(pool, [])
        return sorted((ThreadEntry(**r) for r in rows), key=lambda t: -t.updated)

    def touch(self, pool: str, thread: str, first_message: str) -> ThreadEntry:
        """Record a turn in `thread`; its title is its first message."""
        with self._lock:
            data = self._read()
            rows = {r["id"]: r for r in data.get(pool, [])}
            title = rows.get(thread, {}).get("title") or _title(first_message)
            rows[thread] = asdict(ThreadEntry(thread, title, time.time()))
            data[pool] = sorted(rows.values(), key=lambda r: -r["updated"])[:MAX_THREADS]
            self._write(data)
            return ThreadEntry(**rows[thread])

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".threads-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.path)


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
