"""Per-fact checks used by consolidation: is a fact fit to train, and does an answer recall it?

A fact is unverifiable when it names nothing concrete to ask about (a question, a bare pronoun subject, hedged or
too short): training on it breeds hallucination. Recall is judged on the fact's object phrase (what a question
about the subject should get back), falling back to token overlap with the whole statement. Heuristics over
text only; no model runs here.
"""

from __future__ import annotations

import re

from agentmem.normalize import contains_answer, token_f1
from agentmem.synthesize import parse_statement

_PRONOUN_SUBJECTS = {"it", "this", "that", "he", "she", "they", "we", "i", "you", "these", "those", "there"}
_HEDGES = re.compile(r"\b(maybe|perhaps|probably|possibly|might|i think|i guess|not sure|rumou?r(ed)?)\b", re.I)
RECALL_F1 = 0.5


def unverifiable_reason(text: str) -> str | None:
    """Why a fact must not be trained, or None if it may be."""
    words = text.split()
    if len(words) < 3:
        return "too short to say anything checkable"
    if text.rstrip().endswith("?"):
        return "a question, not a statement"
    if _HEDGES.search(text):
        return "hedged (maybe/probably/I think): not a verified statement"
    first = re.sub(r"[^\w]", "", words[0]).lower()
    if first in _PRONOUN_SUBJECTS:
        return f"its subject is the pronoun {words[0]!r}: nothing to ask about"
    return None


def answer_key(text: str, answer: str | None = None) -> str | None:
    """The phrase an answer must contain to count as recalling the fact."""
    if answer:
        return answer
    return parse_statement(text).object


def recalls(prediction: str, text: str, answer: str | None = None) -> bool:
    key = answer_key(text, answer)
    if key:
        return contains_answer(prediction, [key])
    return token_f1(prediction, [text]) >= RECALL_F1
