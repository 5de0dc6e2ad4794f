"""The manifest that sits beside every adapter: what it was trained on, how, and how it scored.

`manifest.json` holds the base model, the fact ids and a hash of their text, a data card listing every trained
example with its provenance, the training config, metrics and the parent version. It is written atomically and
read back with validation. This module does not train or publish (see `agentmem.registry`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentmem.errors import NotFound
from agentmem.memory.records import Fact, Provenance, utcnow

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def facts_hash(facts: Iterable[Fact]) -> str:
    """sha256 over (id, text) of the facts in id order: changes when a fact is added, dropped or edited."""
    lines = sorted(json.dumps([f.id, f.text], ensure_ascii=False) for f in facts)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


class ExampleSource(BaseModel):
    """Where one trained example came from: the fact's own provenance (taught, correction, miss_resolution,
    document) plus its text, or `rehearsal` (the base model's own answer to a general prompt)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="taught, correction, miss_resolution, document, extra or rehearsal.")
    fact_text: str | None = None
    who: str | None = None
    thread_id: str | None = None
    document: str | None = None
    corrects: str | None = None
    rehearsed_from: str | None = Field(None, description="Adapter version that first learned this fact.")
    note: str | None = None

    @classmethod
    def of_fact(cls, fact: Fact, **extra: Any) -> ExampleSource:
        p: Provenance = fact.provenance
        return cls(kind=p.kind.value, fact_text=fact.text, who=p.who, thread_id=p.thread_id, document=p.document,
                   corrects=p.corrects, **extra)


class TrainedExample(BaseModel):
    """One row of the data card."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    completion: str
    kind: str = Field(description="fact (new), document_qa (a missed question answered from documents), "
                                  "previous_fact (rehearsed from an earlier run) or rehearsal.")
    fact_id: str | None = None
    provenance: ExampleSource | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = MANIFEST_FORMAT
    base_model: str = Field(description="Name or path of the base model the adapter applies to.")
    fact_ids: list[str] = Field(default_factory=list)
    miss_ids: list[str] = Field(default_factory=list, description="Misses resolved by documents trained here.")
    facts_hash: str | None = None
    data_card: list[TrainedExample] = Field(default_factory=list)
    training_config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    parent_version: str | None = Field(None, description="Default on publish: the pool's active version.")
    created_at: datetime = Field(default_factory=utcnow)
    # Filled in by the registry on publish.
    pool: str | None = None
    version: str | None = None
    serving_name: str | None = None

    def write(self, folder: Path) -> Path:
        """Write `folder/manifest.json` atomically and durably (temp file, fsync, rename)."""
        target = folder / MANIFEST_NAME
        fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.model_dump_json(indent=2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_NAME
        if not path.is_file():
            raise NotFound(
                f"no {MANIFEST_NAME} in {folder}", "the adapter folder is incomplete; publish it again"
            )
        return cls.model_validate_json(path.read_text(encoding="utf-8"))
