"""Find model-quoted evidence in the essay, tolerant of whitespace, quote marks and case.

Quotes must be verbatim in substance: tolerance covers only typography (curly vs straight
quotes, dashes, runs of whitespace, letter case) and an elision written as ``...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHAR_MAP = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "`": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}
_ELLIPSIS = ("...", "\u2026")
_STRIP = " \t\r\n\"'.,;:!?()"
MIN_QUOTE_WORDS = 2


@dataclass(frozen=True)
class Span:
    """A half-open character range into the original essay."""

    start: int
    end: int


class _Normalised:
    """The essay normalised, with a map from each normalised char back to the original."""

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        index: list[int] = []
        previous_space = True
        for i, raw in enumerate(text):
            ch = _CHAR_MAP.get(raw, raw)
            if ch.isspace() or not ch.isprintable():
                if ch.isspace() and not previous_space:
                    chars.append(" ")
                    index.append(i)
                    previous_space = True
                continue
            low = ch.lower()
            chars.append(low if len(low) == 1 else ch)
            index.append(i)
            previous_space = False
        self.text = "".join(chars)
        self.index = index


def normalise(text: str) -> str:
    """The comparison form of ``text``."""
    return _Normalised(text).text.strip()


def _pieces(quote: str) -> list[str]:
    work = quote
    for mark in _ELLIPSIS:
        work = work.replace(mark, "\u0000")
    return [p for p in (normalise(part).strip(_STRIP) for part in work.split("\u0000")) if p]


class EssayIndex:
    """An essay prepared once for many quote look-ups."""

    def __init__(self, essay: str) -> None:
        self._norm = _Normalised(essay)

    def locate(self, quote: str) -> Span | None:
        """The span of ``quote`` in the essay, or None when it is not there.

        Elided quotes (``a ... b``) must have every piece present, in order.
        """
        pieces = _pieces(quote)
        if not pieces:
            return None
        text, index = self._norm.text, self._norm.index
        cursor = 0
        first = last = -1
        for piece in pieces:
            at = text.find(piece, cursor)
            if at < 0:
                return None
            if first < 0:
                first = at
            last = at + len(piece)
            cursor = last
        return Span(start=index[first], end=index[last - 1] + 1)


def quote_problem(quote: str, index: EssayIndex) -> str | None:
    """Why ``quote`` is not acceptable evidence, or None when it is."""
    words = " ".join(_pieces(quote)).split()
    if len(words) < MIN_QUOTE_WORDS:
        return f"evidence {quote!r} is too short to be evidence; quote at least {MIN_QUOTE_WORDS} words"
    if index.locate(quote) is None:
        return f"evidence {quote!r} does not appear in the essay; copy a passage word for word"
    return None


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+|\n+")
MAX_SENTENCE_WORDS = 40
MAX_SENTENCES = 300


def essay_sentences(essay: str) -> list[str]:
    """The essay's sentences, verbatim, unique, long ones cut into pieces of at most 40 words.

    Used as the allowed evidence values for grammar-constrained models.
    """
    found: list[str] = []
    seen: set[str] = set()
    for raw in _SENTENCE_END.split(essay):
        sentence = raw.strip()
        words = sentence.split(" ")
        pieces = [" ".join(words[i : i + MAX_SENTENCE_WORDS]) for i in range(0, len(words), MAX_SENTENCE_WORDS)]
        for piece in pieces:
            piece = piece.strip()
            if len(piece.split()) >= MIN_QUOTE_WORDS and piece not in seen:
                seen.add(piece)
                found.append(piece)
    return found[:MAX_SENTENCES]
