from hypothesis import given
from hypothesis import strategies as st

from agentmem.llm.stops import StopTrimmer, trim_at_stop


def test_trim_at_stop():
    assert trim_at_stop("hello STOP world", ["STOP"]) == ("hello ", True)
    assert trim_at_stop("hello", ["STOP"]) == ("hello", False)
    assert trim_at_stop("a</s>b<end>", ["<end>", "</s>"]) == ("a", True)


def test_trimmer_holds_back_partial_stop():
    t = StopTrimmer(["</answer>"])
    assert t.feed("The answer is 4</") == "The answer is 4"
    assert t.feed("ans") == ""
    assert t.feed("wer> trailing") == ""
    assert t.stopped and t.flush() == ""


def test_trimmer_releases_false_alarm():
    t = StopTrimmer(["</answer>"])
    assert t.feed("a </") == "a "
    assert t.feed("b") == "</b"
    assert t.flush() == ""


@given(st.lists(st.text(min_size=0, max_size=6), max_size=12), st.sampled_from(["X", "ab", "<|end|>", "\n\n"]))
def test_streamed_equals_whole(pieces, stop):
    t = StopTrimmer([stop])
    streamed = "".join(t.feed(p) for p in pieces) + t.flush()
    assert streamed == trim_at_stop("".join(pieces), [stop])[0]
