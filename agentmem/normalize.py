"""Answer normalization and the answer metrics built on it: exact match, token F1, containment, refusals.

SQuAD-style normalization (case, punctuation, articles a/an/the, whitespace) plus numbers: "twenty-six" and
"26", "one hundred and five" and "105", "1,000" and "one thousand", "3.0" and "3", "first" and "1st" all
normalize alike, while a decimal point survives ("3.5" stays apart from "35"). A gold answer that is itself a
refusal ("Information not provided") or empty marks an unanswerable question, matched by a refusal. This
module does not call models.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

ARTICLES = frozenset({"a", "an", "the"})

_UNITS = {
    w: i
    for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
}
_TEENS = {
    w: i + 10
    for i, w in enumerate(
        [
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: (i + 2) * 10
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])
}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_ORD_UNITS = {
    w: i + 1
    for i, w in enumerate(
        ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"]
    )
}
_ORD_TEENS = {
    w: i + 10
    for i, w in enumerate(
        [
            "tenth",
            "eleventh",
            "twelfth",
            "thirteenth",
            "fourteenth",
            "fifteenth",
            "sixteenth",
            "seventeenth",
            "eighteenth",
            "nineteenth",
        ]
    )
}
_ORD_TENS = {
    w: (i + 2) * 10
    for i, w in enumerate(
        ["twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth", "ninetieth"]
    )
}
_ORD_SCALES = {"thousandth": 10**3, "millionth": 10**6, "billionth": 10**9, "trillionth": 10**12}

# word -> (class, value, is_ordinal)
_WORDS: dict[str, tuple[str, int, bool]] = {
    **{w: ("unit", v, False) for w, v in _UNITS.items() if v},
    "zero": ("zero", 0, False),
    **{w: ("teen", v, False) for w, v in _TEENS.items()},
    **{w: ("ten", v, False) for w, v in _TENS.items()},
    "hundred": ("hundred", 100, False),
    **{w: ("scale", v, False) for w, v in _SCALES.items()},
    **{w: ("unit", v, True) for w, v in _ORD_UNITS.items()},
    **{w: ("teen", v, True) for w, v in _ORD_TEENS.items()},
    **{w: ("ten", v, True) for w, v in _ORD_TENS.items()},
    "hundredth": ("hundred", 100, True),
    **{w: ("scale", v, True) for w, v in _ORD_SCALES.items()},
}
# Which class may follow which in one number phrase ("twenty six", "nine hundred and five", "2.5 million").
_MAY_FOLLOW = {
    None: {"unit", "teen", "ten", "hundred", "scale", "zero", "digit"},
    "digit": {"hundred", "scale"},
    "unit": {"hundred", "scale"},
    "teen": {"hundred", "scale"},
    "ten": {"unit", "scale"},
    "hundred": {"unit", "teen", "ten", "scale"},
    "scale": {"unit", "teen", "ten"},
    "zero": set(),
}

_WORD_ALT = "|".join(sorted(_WORDS, key=len, reverse=True))
_NUMBER_HYPHEN = re.compile(rf"\b({_WORD_ALT})-(?=(?:{_WORD_ALT})\b)")
_GROUPED = re.compile(r"(?<![0-9,])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9,])")
_DECIMAL = re.compile(r"(?<![0-9.])([0-9]+)\.([0-9]+)(?![0-9.])")
_NUMERIC = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_PUNCT = frozenset(string.punctuation)


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _strip_punctuation(s: str) -> str:
    # SQuAD deletes punctuation; "." and "," between digits stay for the number steps that follow.
    out = []
    for i, ch in enumerate(s):
        if ch in _PUNCT or unicodedata.category(ch).startswith("P"):
            if ch in ".," and 0 < i < len(s) - 1 and _is_digit(s[i - 1]) and _is_digit(s[i + 1]):
                out.append(ch)
            continue
        out.append(ch)
    return "".join(out)


def _canonical_decimal(m: re.Match[str]) -> str:
    whole, frac = m.group(1), m.group(2).rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _format(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _ordinal_suffix(n: int) -> str:
    if 11 <= n % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _parse_number(tokens: list[str], start: int) -> tuple[str, int]:
    """The number phrase starting at `start` as digits, and how many tokens it used (0: not a number)."""
    total, current = Decimal(0), None
    last: str | None = None
    last_scale = None
    ordinal = False
    j = end = start
    while j < len(tokens):
        token = tokens[j]
        if token == "and" and last in ("hundred", "scale") and j + 1 < len(tokens):
            nxt = _WORDS.get(tokens[j + 1])
            if nxt and nxt[0] in ("unit", "teen", "ten"):
                j += 1
                continue
            break
        if _NUMERIC.match(token):
            cls, value, is_ord = "digit", Decimal(token), False
        elif token in _WORDS:
            cls, v, is_ord = _WORDS[token]
            value = Decimal(v)
        else:
            break
        if cls not in _MAY_FOLLOW[last]:
            break
        if cls == "hundred":
            if current is not None and current >= 100:
                break
            current = (current if current is not None else Decimal(1)) * 100
        elif cls == "scale":
            if last_scale is not None and value >= last_scale:
                break
            total += (current if current is not None else Decimal(1)) * value
            current, last_scale = None, value
        else:
            current = (current or Decimal(0)) + value
        last, j, end, ordinal = cls, j + 1, j + 1, is_ord
        if is_ord or cls == "zero":
            break
    used = end - start
    if used == 0 or (used == 1 and last == "digit"):
        return "", 0  # a lone numeral is already canonical
    value = total + (current or Decimal(0))
    text = _format(value)
    if ordinal and value == value.to_integral_value():
        text += _ordinal_suffix(int(value))
    return text, used


def _numbers_to_digits(tokens: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(tokens):
        text, used = _parse_number(tokens, i)
        if used:
            out.append(text)
            i += used
        else:
            out.append(tokens[i])
            i += 1
    return out


def normalize_answer(text: str) -> str:
    """Lowercase, numbers as digits, no punctuation, no articles, single spaces."""
    s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    s = _NUMBER_HYPHEN.sub(r"\1 ", s)
    s = _strip_punctuation(s)
    s = _GROUPED.sub(lambda m: m.group(0).replace(",", ""), s)
    s = _DECIMAL.sub(_canonical_decimal, s)
    s = s.replace(",", "")  # commas between digits that were not thousands groups, as SQuAD would
    tokens = _numbers_to_digits(s.split())
    return " ".join(t for t in tokens if t not in ARTICLES)


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


@functools.cache
def refusal_phrases() -> tuple[tuple[str, ...], ...]:
    """The phrases of agentmem/data/refusals.txt, normalized like answers."""
    raw = importlib.resources.files("agentmem").joinpath("data", "refusals.txt").read_text(encoding="utf-8")
    phrases = (answer_tokens(line) for line in raw.splitlines() if line.strip() and not line.startswith("#"))
    return tuple(dict.fromkeys(tuple(p) for p in phrases if p))


def _contains(haystack: list[str], needle: list[str] | tuple[str, ...]) -> bool:
    n = len(needle)
    return any(tuple(haystack[i : i + n]) == tuple(needle) for i in range(len(haystack) - n + 1))


def is_refusal(text: str) -> bool:
    """Whether the text declines to answer ("I don't know", "not provided", "no information", ...)."""
    tokens = answer_tokens(text)
    return any(_contains(tokens, phrase) for phrase in refusal_phrases())


def is_unanswerable(gold: str) -> bool:
    """A gold answer that is empty or itself a refusal means the question has no answer in the sources."""
    return not answer_tokens(gold) or is_refusal(gold)


def _declines(prediction: str) -> bool:
    return not answer_tokens(prediction) or is_refusal(prediction)


def _golds(golds: str | Iterable[str]) -> list[str]:
    return [golds] if isinstance(golds, str) else list(golds)


def exact_match(prediction: str, golds: str | Iterable[str]) -> bool:
    """Normalized prediction equals a normalized gold; an unanswerable gold is matched by a refusal."""
    pred = normalize_answer(prediction)
    return any(
        _declines(prediction) if is_unanswerable(g) else pred == normalize_answer(g) for g in _golds(golds)
    )


def _f1(pred: list[str], gold: list[str]) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: str | Iterable[str]) -> float:
    """Best SQuAD token F1 over the golds; an unanswerable gold scores 1.0 for a refusal, else 0.0."""
    pred = answer_tokens(prediction)
    scores = [
        float(_declines(prediction)) if is_unanswerable(g) else _f1(pred, answer_tokens(g))
        for g in _golds(golds)
    ]
    return max(scores, default=0.0)


_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s\b")


def contains_answer(prediction: str, golds: str | Iterable[str]) -> bool:
    """A normalized gold occurs in the normalized prediction as whole tokens ("26" is not in "126"); a possessive
    counts as its noun ("Shakespeare" is in "Shakespeare's play", which normalizes to "shakespeares")."""
    preds = [answer_tokens(prediction), answer_tokens(_POSSESSIVE.sub("", prediction))]
    return any(
        _declines(prediction) if is_unanswerable(g) else any(_contains(pred, answer_tokens(g)) for pred in preds)
        for g in _golds(golds)
    )
