"""The memory log: typed records of taught facts, misses, feedback and consolidation runs, and their stores.

`open_memory_log(settings)` gives the SQLite store at `settings.db_path`; `InMemoryLog` is for tests.
Retrieval and consolidation live elsewhere and only read and write through this interface.
"""

from __future__ import annotations

from agentmem.memory.inmemory import InMemoryLog
from agentmem.memory.log import MemoryLog
from agentmem.memory.records import (
    ACTIVE_FACT_STATUSES,
    ACTIVE_RUN_STATUSES,
    ConsolidationRun,
    Fact,
    FactConflict,
    FactStatus,
    Feedback,
    Miss,
    MissStatus,
    Provenance,
    ProvenanceKind,
    Rating,
    Resolution,
    ResolutionKind,
    RunStatus,
)
from agentmem.memory.sqlite import SqliteLog
from agentmem.settings import Settings


def open_memory_log(settings: Settings) -> SqliteLog:
    """The memory log of this data folder (created and migrated on first use)."""
    return SqliteLog(settings.db_path, busy_timeout_s=settings.db_busy_timeout_s)


__all__ = [
    "ACTIVE_FACT_STATUSES",
    "ACTIVE_RUN_STATUSES",
    "ConsolidationRun",
    "Fact",
    "FactConflict",
    "FactStatus",
    "Feedback",
    "InMemoryLog",
    "MemoryLog",
    "Miss",
    "MissStatus",
    "Provenance",
    "ProvenanceKind",
    "Rating",
    "Resolution",
    "ResolutionKind",
    "RunStatus",
    "SqliteLog",
    "open_memory_log",
]
