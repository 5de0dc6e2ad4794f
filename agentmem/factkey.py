"""A fact's slot: what a statement is about (subject) and which relation it states (key).

"The capital of Zorbania is Quellmark." and "The capital of Zorbania is Lumen." share the slot
("capital of zorbania", "is"): the newer one supersedes the older in the memory log. The subject is the normalized
text before the first linking verb, the key is that verb; statements without one have no slot (they never
supersede by slot). A heuristic for short declarative facts, not a parser: it does not understand negation or
multi-clause sentences.
"""

from __future__ import annotations

import re

_LINKS = (
    r"is|are|was|were|has|have|had|equals|means|lives in|works at|works for|was born in|was born on|born in|"
    r"costs|weighs|measures|contains|uses|likes|prefers|loves|owns|runs on|stands for|belongs to|starts at|ends at"
)
_LINK_RE = re.compile(rf"\b({_LINKS})\b", re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s']")


def normalize_statement(text: str) -> str:
    text = _PUNCT.sub(" ", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def fact_slot(statement: str) -> tuple[str, str] | None:
    """(subject, relation) of a statement, normalized; None when no linking verb with text on both sides."""
    match = _LINK_RE.search(statement)
    if not match or match.start() == 0:
        return None
    subject = normalize_statement(statement[: match.start()])
    rest = normalize_statement(statement[match.end() :])
    if not subject or not rest:  # "X is" with nothing after, or no subject: not a usable slot
        return None
    return subject, " ".join(match.group(1).lower().split())


def fact_key(statement: str) -> str | None:
    """The slot as one string ("capital of zorbania is"), for display and quick comparison."""
    slot = fact_slot(statement)
    return f"{slot[0]} {slot[1]}" if slot else None
