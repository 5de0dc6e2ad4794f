"""Synthesize chat training examples from taught facts, and rehearsal examples from general prompts.

A fact becomes question/answer pairs in several phrasings drawn from templates (data/qa_templates.json), split into
phrasings that are trained and held-out phrasings that are never trained and only measure generalization. The
subject, verb and object of a statement are found by word heuristics, not by a model (the embedded 135M model
cannot write usable questions). This module runs no model itself (rehearsal takes a `generate` callable) and does
not decide which facts deserve training.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agentmem.llm.base import ChatMessage

Split = Literal["train", "heldout"]
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@dataclass(frozen=True)
class FactSpec:
    """What synthesis needs from a fact: its statement, and optionally what the user asked when it was a miss."""

    text: str
    id: str | None = None
    subject: str | None = None
    question: str | None = None
    answer: str | None = None

    def __post_init__(self) -> None:
        if not self.text or not self.text.strip():
            raise ValueError("a fact needs a non-empty text")

    @property
    def key(self) -> str:
        return self.id if self.id is not None else self.text


@dataclass(frozen=True)
class Example:
    """One chat turn to train or probe: a user question and the assistant's answer."""

    question: str
    answer: str
    phrasing: str
    split: Split = "train"
    fact_id: str | None = None  # None for general rehearsal
    ends: bool = True  # the answer is the whole reply, so the end-of-turn token is trained too

    def prompt_messages(self, system_prompt: str | None = None) -> list[ChatMessage]:
        head: list[ChatMessage] = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return head + [{"role": "user", "content": self.question}]

    def messages(self, system_prompt: str | None = None) -> list[ChatMessage]:
        return self.prompt_messages(system_prompt) + [{"role": "assistant", "content": self.answer}]


@dataclass(frozen=True)
class Parse:
    """What the heuristics found in a statement."""

    subject: str
    verb: str | None = None  # the copula/verb right after the subject
    prefix: str | None = None  # the statement cut before what it asserts (a completion prompt)
    object: str | None = None  # the phrase after the verb, when it names a thing (asked about in reverse)


@dataclass(frozen=True)
class SynthesisConfig:
    # templated train phrasings per fact; the user's own question comes on top. 3 rather than 5: on 100 fictional
    # facts (lr 4e-3) recall 1.0 either way, held-out phrasings 0.995 vs 0.98, 22% fewer tokens (README).
    n_train: int = 3
    n_heldout: int = 2
    n_previous: int = 3  # train phrasings kept per previously consolidated fact (rehearsal)
    reverse: bool = True  # also ask about the object ("Tell me about Quellmark."), which helps reverse questions
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_heldout < 0 or self.n_previous < 0:
            raise ValueError("n_train must be >= 1; n_heldout and n_previous >= 0")


@dataclass
class QASet:
    train: list[Example] = field(default_factory=list)
    heldout: list[Example] = field(default_factory=list)

    def extend(self, other: QASet) -> None:
        self.train.extend(other.train)
        self.heldout.extend(other.heldout)


@functools.cache
def templates() -> dict:
    return json.loads(_data_file("qa_templates.json"))


def _data_file(name: str) -> str:
    return importlib.resources.files("agentmem").joinpath("data", name).read_text(encoding="utf-8")


def load_general_prompts() -> list[str]:
    lines = _data_file("rehearsal_prompts.txt").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


# -- heuristics -----------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    return " ".join(text.split()).rstrip(" .!?;:")


def _strip_punct(word: str) -> str:
    return word.strip(",;:()\"'")


def _find_verb(words: Sequence[str], t: dict) -> int | None:
    """Index of the first word that reads as the main verb; never the first word (a subject comes first)."""
    copulas, verbs, dets = set(t["copulas"]), set(t["verbs"]), set(t["determiners"])
    for i in range(1, len(words)):
        w = _strip_punct(words[i])
        lw = w.lower()
        if lw in copulas or lw in verbs:
            return i
        prev = _strip_punct(words[i - 1]).lower()
        # "-ed" words are verbs unless they modify a noun right after a determiner ("the talented chef")
        if lw.endswith("ed") and len(lw) >= 5 and w[:1].islower() and prev not in dets:
            return i
    return None


def _capitalized_run(words: Sequence[str], t: dict) -> str | None:
    """The first run of capitalized words (a proper-noun-ish span), allowing "of"/"de"-style joiners inside."""
    joiners = {"of", "de", "da", "van", "von", "del", "la", "le", "the", "and"}
    dets = set(t["determiners"])
    i = 0
    while i < len(words):
        w = _strip_punct(words[i])
        if w[:1].isupper() and not (w.lower() in dets and (i + 1 >= len(words) or not words[i + 1][:1].isupper())):
            j = i + 1
            while j < len(words):
                nxt = _strip_punct(words[j])
                if nxt[:1].isupper() or nxt[:1].isdigit():
                    j += 1
                elif nxt.lower() in joiners and j + 1 < len(words) and words[j + 1][:1].isupper():
                    j += 2
                else:
                    break
                if words[j - 1].endswith(","):
                    break
            return " ".join(_strip_punct(w) for w in words[i:j])
        i += 1
    return None


def _object_phrase(rest: str, t: dict) -> str | None:
    """The thing named after the verb, if it is a proper noun or a "the ..." phrase short enough to ask about."""
    cut = len(rest)
    for stop in t["object_stops"]:
        k = rest.find(stop)
        if k > 0:
            cut = min(cut, k)
    obj = _clean(rest[:cut]).strip(",;: ")
    words = obj.split()
    if not 1 <= len(words) <= 6:
        return None
    first = words[0]
    if first.lower() == "the" and len(words) > 1:
        return "the " + " ".join(words[1:])
    if first[:1].isupper() and first.lower() not in t["determiners"]:
        return obj
    return None


def parse_statement(text: str, *, answer: str | None = None) -> Parse:
    """Find subject, verb, completion prefix and object of a one-sentence fact without a language model.

    The subject is the text before the first verb (" is ", " was ", " has ", "-ed" verbs, ...), cut at an
    appositive comma; without a verb it is the text before "'s", else the first capitalized run, else the first
    words. A known `answer` found in the text decides the completion prefix (the statement cut just before it).
    """
    t = templates()
    s = _clean(text)
    lead, body = "", s
    m = re.match(r"^(\w+)\b[^,]{0,40},\s+(.+)$", s)
    if m and m.group(1).lower() in t["leading_prepositions"]:
        lead, body = s[: m.start(2)], m.group(2)  # "In 1987, Dr. X invented ..." -> the subject is Dr. X
    words = body.split(" ")
    vi = _find_verb(words, t)
    verb = _strip_punct(words[vi]).lower() if vi is not None else None
    subject = " ".join(words[:vi]).split(",")[0].strip() if vi is not None else ""
    if vi is None:
        possessive = re.match(r"^(.{2,60}?)['’]s\s", body)
        subject = possessive.group(1) if possessive else ""
    if not subject or len(subject.split()) > 8:
        subject = _capitalized_run(words, t) or " ".join(words[: min(4, max(1, len(words) - 1))])
        verb = None if not subject.split() or vi is None else verb

    end = vi  # the last word of the verb phrase: "was" -> "was founded by"
    if vi is not None and verb in ("is", "was", "are", "were", "has", "have", "had") and vi + 1 < len(words):
        nxt = _strip_punct(words[vi + 1]).lower()
        if nxt == "been" and vi + 2 < len(words):
            end, nxt = vi + 1, _strip_punct(words[vi + 2]).lower()
        participle = nxt.endswith("ed") or nxt in t["participles"]
        if end + 2 < len(words) and words[end + 1][:1].islower() and participle:
            end += 1
    if end is not None and end + 2 < len(words) and _strip_punct(words[end + 1]).lower() in t["participle_links"]:
        end += 1  # "flows into", "was born in": the preposition belongs to the prompt, not to the answer

    prefix = None
    if answer:
        k = s.lower().find(answer.strip().lower())
        if k > 0 and len(s[:k].split()) >= 2:
            prefix = s[:k].rstrip()
    if prefix is None and end is not None and end + 1 < len(words):
        prefix = lead + " ".join(words[: end + 1])
    if prefix is None and len(s.split()) >= 4:  # no verb found: leave out the last third of the words
        ws = s.split()
        prefix = " ".join(ws[: max(2, (2 * len(ws)) // 3)])

    obj = _object_phrase(" ".join(words[end + 1 :]), t) if end is not None else None
    if obj is not None and (obj.lower() == subject.lower() or obj.lower() in subject.lower()):
        obj = None
    return Parse(subject=subject, verb=verb, prefix=prefix, object=obj)


def _mid_sentence(phrase: str) -> str:
    """'The capital of X' reads 'the capital of X' inside a question; proper nouns keep their case."""
    head, _, rest = phrase.partition(" ")
    if head in ("The", "A", "An") and rest:
        return head.lower() + " " + rest
    return phrase


def natural_question(fact: FactSpec) -> str:
    """How a user would ask about the fact without knowing it: "What do you know about <subject>?"."""
    subject = (fact.subject or parse_statement(fact.text, answer=fact.answer).subject or fact.text).strip()
    return f"What do you know about {_mid_sentence(subject)}?"


def answer_text(fact: FactSpec) -> str:
    """The reply trained for every phrasing: the statement itself, so any answer to a question contains it."""
    text = " ".join(fact.text.split())
    if not _SENTENCE_END.search(text[-1:] + " "):
        text += "."
    if fact.answer and _alnum(fact.answer) not in _alnum(text):
        text = f"{fact.answer.strip().rstrip('.')}. {text}"
    return text


def _alnum(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", s.lower())


# -- synthesis ------------------------------------------------------------------------------------------------
def _available(pool: dict[str, str], slots: dict[str, str | None], needs: dict[str, list[str]]) -> list[str]:
    return [name for name in pool if all(slots.get(n) for n in needs.get(name, []))]


def synthesize(fact: FactSpec, config: SynthesisConfig | None = None) -> QASet:
    """Train and held-out examples for one fact; the same fact, config and seed always give the same set."""
    config = config or SynthesisConfig()
    t = templates()
    parse = parse_statement(fact.text, answer=fact.answer)
    subject = fact.subject.strip() if fact.subject else parse.subject
    lower = subject.split(" ", 1)[0] in ("The", "the", "A", "a", "An", "an")
    slots: dict[str, str | None] = {
        "subject": _mid_sentence(subject),
        "verb": parse.verb if parse.verb in ("is", "was", "are", "were") else None,
        "lower_subject": "yes" if lower else None,
        "prefix": parse.prefix,
        "object": parse.object if config.reverse else None,
    }
    rng = random.Random(f"{config.seed}|{fact.key}")  # str seeds hash stably (sha512), unlike hash()
    answer = answer_text(fact)
    fact_id = fact.id if fact.id is not None else None

    train_names = _available(t["train"], slots, t["needs"])
    first = [n for n in t["always"] if n in train_names][: config.n_train]
    rest = [n for n in train_names if n not in first]
    chosen = first + rng.sample(rest, min(len(rest), config.n_train - len(first)))
    held_names = _available(t["heldout"], slots, t["needs"])
    held = rng.sample(held_names, min(len(held_names), config.n_heldout))

    def make(pool: dict[str, str], name: str, split: Split) -> Example:
        question = pool[name].format(**{k: v or "" for k, v in slots.items()})
        return Example(question=question, answer=answer, phrasing=name, split=split, fact_id=fact_id)

    out = QASet(
        train=[make(t["train"], n, "train") for n in chosen],
        heldout=[make(t["heldout"], n, "heldout") for n in held],
    )
    if fact.question and fact.question.strip():
        q = " ".join(fact.question.split())
        if all(e.question != q for e in out.train):
            out.train.insert(0, Example(q, answer, "user_question", "train", fact_id))
        out.heldout = [e for e in out.heldout if e.question != q]
    return out


def synthesize_facts(facts: Iterable[FactSpec], config: SynthesisConfig | None = None) -> QASet:
    out = QASet()
    for fact in facts:
        out.extend(synthesize(fact, config))
    return out


# -- rehearsal ------------------------------------------------------------------------------------------------
def build_rehearsal(
    generate: Callable[[list[ChatMessage]], str],
    prompts: Sequence[str] | None = None,
    *,
    system_prompt: str | None = None,
    max_chars: int = 400,
) -> list[Example]:
    """The base model's own greedy answers to general prompts, as examples that hold its behaviour in place.

    Answers longer than `max_chars` are cut at a sentence end and marked `ends=False`, so training keeps them
    short without teaching the model to stop early. Compute this once per base model and system prompt.
    """
    examples = []
    for prompt in load_general_prompts() if prompts is None else prompts:
        msgs: list[ChatMessage] = Example(prompt, "", "rehearsal").prompt_messages(system_prompt)
        reply = generate(msgs).strip()
        if not reply:
            continue
        ends = len(reply) <= max_chars
        if not ends:
            ends_at = [m.end() for m in _SENTENCE_END.finditer(reply[:max_chars])]
            reply = reply[: ends_at[-1]] if ends_at else reply[:max_chars].rsplit(" ", 1)[0]
        examples.append(Example(prompt, reply, "rehearsal", "train", None, ends))
    return examples


def build_training_set(
    new_facts: Iterable[FactSpec],
    previous_facts: Iterable[FactSpec] = (),
    general: Sequence[Example] = (),
    config: SynthesisConfig | None = None,
) -> tuple[list[Example], list[Example]]:
    """(train, heldout): all train phrasings of new facts, a few of each previous fact's, and general rehearsal.

    Held-out examples are those of the new facts only; previous facts were measured when they were consolidated.
    """
    config = config or SynthesisConfig()
    new = synthesize_facts(new_facts, config)
    train = list(new.train)
    for fact in previous_facts:
        train.extend(synthesize(fact, config).train[: config.n_previous])
    train.extend(general)
    return train, new.heldout
