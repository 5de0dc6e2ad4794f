"""More properties of answer normalization and its metrics (tests/unit/test_normalize.py has the examples).

Numbers spelled out in English, as cardinals or ordinals, with or without hyphens and "and", normalize to the
same digits as the number itself and its comma-grouped form; case, surrounding punctuation and a leading article
never matter; the metrics are bounded, reflexive and symmetric where the definitions say so.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem.normalize import contains_answer, exact_match, is_unanswerable, normalize_answer, token_f1

PROPERTY = settings(max_examples=200, deadline=None, database=None)

UNITS = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"), (1, "")]
ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
           "twelve": "twelfth"}


def below_hundred(n: int, hyphen: bool) -> str:
    if n < 10:
        return UNITS[n]
    if n < 20:
        return TEENS[n - 10]
    tens, unit = divmod(n, 10)
    return TENS[tens] + (("-" if hyphen else " ") + UNITS[unit] if unit else "")


def below_thousand(n: int, hyphen: bool, use_and: bool) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{UNITS[hundreds]} hundred"] if hundreds else []
    if rest:
        words += (["and"] if hundreds and use_and else []) + [below_hundred(rest, hyphen)]
    return " ".join(words)


def spell(n: int, hyphen: bool = True, use_and: bool = False) -> str:
    """English words for 0 <= n < 10**15: 'one hundred and twenty-six thousand ...'."""
    if n == 0:
        return "zero"
    groups = []
    for value, name in SCALES:
        count, n = divmod(n, value)
        if count:
            groups.append(below_thousand(count, hyphen, use_and) + (f" {name}" if name else ""))
    return " ".join(groups)


def ordinal_word(word: str) -> str:
    if word in ORDINAL:
        return ORDINAL[word]
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def spell_ordinal(n: int, hyphen: bool = True, use_and: bool = False) -> str:
    words = spell(n, hyphen, use_and)
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    return words[:cut] + ordinal_word(words[cut:])


def suffix(n: int) -> str:
    return "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


numbers = st.integers(0, 10**15 - 1) | st.integers(0, 1000) | st.sampled_from([11, 12, 13, 100, 1000, 10**6])


@PROPERTY
@given(n=numbers, hyphen=st.booleans(), use_and=st.booleans())
def test_spelled_numbers_normalize_to_their_digits(n, hyphen, use_and):
    words = spell(n, hyphen, use_and)
    assert normalize_answer(words) == str(n), words
    assert normalize_answer(words.upper() + ".") == str(n)
    assert normalize_answer(f"{n:,}") == str(n)
    assert exact_match(words, f"{n:,}") and exact_match(f"The answer is {n:,}.", f"the answer is {words}")


@PROPERTY
@given(n=numbers.filter(bool), hyphen=st.booleans(), use_and=st.booleans())
def test_spelled_ordinals_normalize_to_digits_with_suffix(n, hyphen, use_and):
    words = spell_ordinal(n, hyphen, use_and)
    assert normalize_answer(words) == f"{n}{suffix(n)}", words
    assert exact_match(f"the {words} time", f"{n}{suffix(n)} time")


@PROPERTY
@given(n=st.integers(0, 10**6), m=st.integers(0, 10**6).filter(lambda m: m % 10))  # m: no trailing zero
def test_decimals_keep_their_point(n, m):
    assert normalize_answer(f"{n}.{m}") == f"{n}.{m}"
    assert normalize_answer(f"{n}.{m}000") == f"{n}.{m}"
    assert normalize_answer(f"{n}.000") == str(n)
    assert not exact_match(f"{n}.{m}", f"{n}{m}")


words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1, max_size=8)


@PROPERTY
@given(ws=words, punct=st.sampled_from(["", ".", "!", "?", '"', "'", "...", " -"]))
def test_case_punctuation_and_a_leading_article_do_not_matter(ws, punct):
    text = " ".join(ws)
    once = normalize_answer(text)
    assert normalize_answer(text.upper()) == once
    assert normalize_answer(f"The {text}{punct}") == once
    assert normalize_answer(f"  {text.title()}  {punct} ") == once
    assert not any(token in {"a", "an", "the"} for token in once.split())


answers = st.text(max_size=30) | words.map(" ".join)


@PROPERTY
@given(a=answers, b=answers, c=answers)
def test_metric_bounds_reflexivity_and_symmetry(a, b, c):
    f1 = token_f1(a, b)
    assert 0.0 <= f1 <= 1.0
    assert token_f1(a, a) == 1.0 and exact_match(a, a) and contains_answer(a, a)
    assert token_f1(a, [b, c]) == max(token_f1(a, b), token_f1(a, c))
    assert exact_match(a, [b, c]) == (exact_match(a, b) or exact_match(a, c))
    if not is_unanswerable(a) and not is_unanswerable(b):  # unanswerable golds are matched by refusals only
        assert token_f1(b, a) == pytest.approx(f1)
        assert exact_match(a, b) == exact_match(b, a) == (normalize_answer(a) == normalize_answer(b))
        if exact_match(a, b):
            assert contains_answer(a, b) and contains_answer(b, a)
