"""The agent's state: what flows between the graph's nodes for one turn, and what a thread keeps.

Only `messages` accumulates across turns (the checkpointer persists it per thread); everything else is the
current turn's scratch space and is reset by the first node. No logic lives here.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict


class Source(TypedDict, total=False):
    kind: Literal["document", "memory"]
    source: str
    title: str
    section: str
    score: float
    text: str
    fact_id: str
    page: int
    line_start: int
    line_end: int


class AgentState(TypedDict, total=False):
    messages: Annotated[list[dict], operator.add]  # {"role", "content", ...} of every turn in the thread
    pool: str
    thread_id: str
    retrieval: bool  # False: closed-book, the weights alone
    question: str
    intent: Literal["question", "teach", "correct"]
    statement: str  # the fact taught or the corrected statement
    hits: list[dict]  # retrieved chunks and memories, before grading
    sources: list[Source]  # what the answer may use and cites
    answer: str
    adapter: str | None
    missed: bool
    miss_id: str | None
    fact_id: str | None
    superseded: list[str]
