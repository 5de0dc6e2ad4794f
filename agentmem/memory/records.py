"""Typed records of the memory log: facts, misses, feedback and consolidation runs.

Records are frozen pydantic models; `model_dump(mode="json")` / `model_validate` is the one serializer every
store uses. How a record may change (edit, status, resolution, run progress) lives here as methods returning a
new record, so every store applies the same rules. Storage, queries and cross-record checks are not here (see
the stores).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentmem.errors import Conflict
from agentmem.settings import POOL_PATTERN


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


class FactStatus(StrEnum):
    PENDING = "pending"  # taught, in no adapter yet
    CONSOLIDATED = "consolidated"  # trained into `adapter_version`
    REJECTED = "rejected"  # unverifiable, contradicted or removed: never trained
    SUPERSEDED = "superseded"  # replaced by the fact `superseded_by`
    KNOWN = "known"  # the base model already answers it: no training needed


ACTIVE_FACT_STATUSES = frozenset({FactStatus.PENDING, FactStatus.CONSOLIDATED, FactStatus.KNOWN})


class ProvenanceKind(StrEnum):
    TAUGHT = "taught"
    CORRECTION = "correction"
    MISS_RESOLUTION = "miss_resolution"
    DOCUMENT = "document"


class MissStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ResolutionKind(StrEnum):
    FACT = "fact"
    DOCUMENT = "document"


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"  # trained, but the evaluation gate refused to promote it
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


def fold(text: str) -> str:
    """Case- and space-insensitive form used to compare subjects and keys."""
    return " ".join(text.casefold().split())


def slot_of(subject: str | None, key: str | None) -> str | None:
    """Two active facts with the same slot contradict each other; a fact without a key has no slot."""
    key = _optional_text(key)
    if key is None:
        return None
    return f"{fold(_optional_text(subject) or '')}\x1f{fold(key)}"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def evolve(self, **changes: Any) -> Self:
        """A validated copy with `changes` applied (model_copy(update=...) would skip validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def _optional_text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class Provenance(Record):
    kind: ProvenanceKind = ProvenanceKind.TAUGHT
    who: str | None = None
    thread_id: str | None = None
    document: str | None = Field(None, description="Path of the source document (kind=document).")
    corrects: str | None = Field(None, description="Id of the fact this one corrects.")


class Fact(Record):
    id: str = Field(default_factory=lambda: new_id("fact"))
    pool: str = Field(pattern=POOL_PATTERN)
    text: str = Field(min_length=1)
    subject: str | None = Field(
        None, description="What the fact is about, e.g. 'Zorblax' (with key: a slot)."
    )
    key: str | None = Field(None, description="Which property of the subject, e.g. 'capital'.")
    provenance: Provenance = Field(default_factory=Provenance)
    status: FactStatus = FactStatus.PENDING
    superseded_by: str | None = None
    adapter_version: str | None = Field(None, description="The adapter version that holds this fact.")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("text", mode="before")
    @classmethod
    def _strip_text(cls, v: Any) -> Any:
        return v.strip() if isinstance(v, str) else v

    @field_validator("subject", "key", mode="before")
    @classmethod
    def _strip_optional(cls, v: Any) -> Any:
        return _optional_text(v)

    @property
    def slot(self) -> str | None:
        return slot_of(self.subject, self.key)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_FACT_STATUSES

    def edited(self, *, text: str | None = None, subject: str | None = None, key: str | None = None) -> Fact:
        """New text/subject/key (None: unchanged, "": clear). A trained or known fact with new text must be
        trained again, so it goes back to pending."""
        if self.status is FactStatus.SUPERSEDED:
            raise Conflict(
                f"fact {self.id} was superseded", f"edit the fact that replaced it: {self.superseded_by}"
            )
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if subject is not None:
            changes["subject"] = subject
        if key is not None:
            changes["key"] = key
        if text is not None and text.strip() != self.text:
            changes["text"] = text
            if self.status in (FactStatus.CONSOLIDATED, FactStatus.KNOWN):
                changes.update(status=FactStatus.PENDING, adapter_version=None)
        return self.evolve(**changes)

    def with_status(self, status: FactStatus | str) -> Fact:
        """pending / rejected / known. `consolidated` and `superseded` have their own operations."""
        status = FactStatus(status)
        if status in (FactStatus.CONSOLIDATED, FactStatus.SUPERSEDED):
            raise ValueError(f"use mark_consolidated/supersede to make a fact {status}")
        if self.status is FactStatus.SUPERSEDED:
            raise Conflict(
                f"fact {self.id} was superseded by {self.superseded_by}", "change that fact instead"
            )
        # adapter_version stays: an adapter that learned a now-rejected fact still holds it.
        return self.evolve(status=status, updated_at=utcnow())


class FactConflict(Conflict):
    """An active fact already occupies the slot (subject, key) of the fact being written."""

    def __init__(self, existing: Fact):
        super().__init__(
            f"fact {existing.id} already says {existing.subject or ''}/{existing.key}: {existing.text!r}",
            "supersede it with the new fact, or reject it first",
        )
        self.existing = existing


class Resolution(Record):
    kind: ResolutionKind
    ref: str = Field(min_length=1, description="A fact id (kind=fact) or a document path (kind=document).")


class Miss(Record):
    id: str = Field(default_factory=lambda: new_id("miss"))
    pool: str = Field(pattern=POOL_PATTERN)
    question: str = Field(min_length=1)
    best_score: float | None = Field(
        None, description="Best retrieval score seen when the question was missed."
    )
    answer: str | None = Field(None, description="What the agent answered anyway.")
    thread_id: str | None = None
    status: MissStatus = MissStatus.OPEN
    resolved_by: Resolution | None = None
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None

    def resolved(self, by: Resolution) -> Miss:
        if self.status is MissStatus.RESOLVED:
            if self.resolved_by == by:
                return self
            raise Conflict(
                f"miss {self.id} is already resolved by {self.resolved_by.kind} {self.resolved_by.ref}"
            )
        return self.evolve(status=MissStatus.RESOLVED, resolved_by=by, resolved_at=utcnow())


class Feedback(Record):
    id: str = Field(default_factory=lambda: new_id("fb"))
    pool: str = Field(pattern=POOL_PATTERN)
    thread_id: str | None = None
    question: str
    answer: str
    rating: Rating
    correction: str | None = Field(None, description="What the answer should have been (thumbs down).")
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("correction", mode="before")
    @classmethod
    def _strip_correction(cls, v: Any) -> Any:
        return _optional_text(v)


_RUN_FIELDS_UPDATABLE = frozenset(
    {
        "status",
        "stage",
        "started_at",
        "finished_at",
        "config",
        "metrics",
        "gate",
        "fact_ids",
        "adapter_version",
        "error",
        "log_path",
    }
)
_STAGE = re.compile(r"^[a-z][a-z0-9_]*$")


class ConsolidationRun(Record):
    id: str = Field(default_factory=lambda: new_id("run"))
    pool: str = Field(pattern=POOL_PATTERN)
    status: RunStatus = RunStatus.QUEUED
    stage: str | None = Field(
        None, description="Where a running run is: select, filter, synthesize, train, ..."
    )
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    gate: dict[str, Any] = Field(default_factory=dict, description="The promotion decision and its reasons.")
    fact_ids: list[str] = Field(default_factory=list, description="Facts this run selected for training.")
    adapter_version: str | None = None
    error: str | None = None
    log_path: str | None = None

    @field_validator("stage")
    @classmethod
    def _stage_name(cls, v: str | None) -> str | None:
        if v is not None and not _STAGE.match(v):
            raise ValueError("stage must be a lower_snake_case word")
        return v

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    def updated(self, **changes: Any) -> ConsolidationRun:
        """Apply progress; a finished run never becomes active again. Start/finish times are filled in."""
        unknown = set(changes) - _RUN_FIELDS_UPDATABLE
        if unknown:
            raise ValueError(f"cannot update run field(s): {sorted(unknown)}")
        new = self.evolve(**changes)
        if not self.active and new.status != self.status:
            raise Conflict(f"run {self.id} already finished ({self.status})", "start a new run instead")
        if new.status is RunStatus.RUNNING and new.started_at is None:
            new = new.evolve(started_at=utcnow())
        if not new.active and new.finished_at is None:
            new = new.evolve(finished_at=utcnow())
        return new
