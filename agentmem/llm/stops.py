"""Stop-string handling for streamed text.

Streaming must never show a user text that a stop string later cuts off, so the tail that could still become a
stop string is held back until it is disambiguated. This module only trims text; it does not stop generation.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopTrimmer:
    def __init__(self, stops: Sequence[str]):
        self.stops = tuple(s for s in stops if s)
        self._buf = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add decoded text; return what is safe to emit now."""
        if self.stopped:
            return ""
        self._buf += piece
        cut = first_stop(self._buf, self.stops)
        if cut is not None:
            out, self._buf, self.stopped = self._buf[:cut], "", True
            return out
        hold = _longest_partial_stop(self._buf, self.stops)
        out = self._buf[: len(self._buf) - hold]
        self._buf = self._buf[len(self._buf) - hold :]
        return out

    def flush(self) -> str:
        out, self._buf = ("" if self.stopped else self._buf), ""
        return out


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cut = first_stop(text, stops)
    return (text, False) if cut is None else (text[:cut], True)


def _longest_partial_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of text that is a proper prefix of some stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best
