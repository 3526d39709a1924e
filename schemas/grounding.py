"""Find model-quoted evidence in the essay, tolerant of whitespace, quote marks and case.

Quotes must be verbatim in substance: tolerance covers only typography (curly vs straight
quotes, dashes, runs of whitespace, letter case) and an elision written as ``...``. A model
shown the numbered sentences (``schemas.sentences``) may cite ``"S12"`` instead.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from schemas.sentences import MIN_EVIDENCE_WORDS, SentenceTable, is_sentence_ref

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
MIN_QUOTE_WORDS = MIN_EVIDENCE_WORDS


@dataclass(frozen=True)
class Span:
    """A half-open character range into the original essay."""

    start: int
    end: int


_SPACES = {chr(c): " " for c in range(0x3100) if chr(c).isspace() and chr(c) != " "}
_REPLACEMENTS = tuple((_SPACES | _CHAR_MAP).items())
# after the replacements every whitespace char is " ": only runs of 2+ (and a leading run) change length
_WHITESPACE_RUN = re.compile(r" {2,}")


def _unify(text: str) -> str:
    """Same-length replacements of typographic variants and whitespace (C-level, per variant present)."""
    for variant, plain in _REPLACEMENTS:
        if variant in text:
            text = text.replace(variant, plain)
    return text


class _Normalised:
    """The text normalised, with a map from each normalised position back to the original.

    Typography is unified, case folded, whitespace runs collapsed to one space (leading ones
    dropped) and invisible characters dropped. The common case is done with C-level string
    operations; positions are mapped back through the few places where lengths changed.
    """

    def __init__(self, text: str) -> None:
        mapped = _unify(text)
        lowered = mapped.lower()
        if len(lowered) != len(mapped):
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in mapped)
        keep: list[int] | None = None
        if not lowered.isprintable():
            keep = [i for i, c in enumerate(lowered) if c.isprintable()]
            lowered = "".join(lowered[i] for i in keep)
        # Each whitespace run becomes one space (a leading run disappears): record, in normalised
        # coordinates, where the offset to the original grows.
        pieces: list[str] = []
        self._marks: list[int] = []
        self._shifts: list[int] = []
        shift = 0
        cursor = 0
        runs = [m.span() for m in _WHITESPACE_RUN.finditer(lowered)]
        if lowered.startswith(" ") and (not runs or runs[0][0] != 0):
            runs.insert(0, (0, 1))
        for start, end in runs:
            pieces.append(lowered[cursor:start])
            collapsed = 0 if start == 0 else 1
            if collapsed:
                pieces.append(" ")
            shift += (end - start) - collapsed
            self._marks.append(start - (shift - ((end - start) - collapsed)) + collapsed)
            self._shifts.append(shift)
            cursor = end
        pieces.append(lowered[cursor:])
        self.text = "".join(pieces)
        self._keep = keep

    def original(self, position: int) -> int:
        """The original index of normalised ``position``."""
        at = bisect_right(self._marks, position)
        index = position + (self._shifts[at - 1] if at else 0)
        return self._keep[index] if self._keep is not None else index


def normalise(text: str) -> str:
    """The comparison form of ``text``."""
    return _Normalised(text).text.strip()


def _pieces(quote: str) -> list[str]:
    work = quote
    for mark in _ELLIPSIS:
        work = work.replace(mark, "\u0000")
    return [p for p in (normalise(part).strip(_STRIP) for part in work.split("\u0000")) if p]


class EssayIndex:
    """An essay prepared once for many quote look-ups.

    With ``sentence_refs`` the model was shown the essay's numbered sentences, and evidence may
    be a reference such as ``"S12"``: it locates that sentence's exact span. ``table``: the essay's
    ``SentenceTable`` when the caller has built it already (it must be this essay's).
    """

    def __init__(
        self,
        essay: str,
        *,
        sentence_refs: bool = False,
        not_evidence: frozenset[str] = frozenset(),
        table: SentenceTable | None = None,
    ) -> None:
        self._norm = _Normalised(essay)
        self.sentences = (table or SentenceTable(essay)) if sentence_refs else None
        self.not_evidence = not_evidence
        """References of sentences that cannot be evidence (the title, the question copied out)."""

    def locate(self, quote: str) -> Span | None:
        """The span of ``quote`` in the essay, or None when it is not there.

        Elided quotes (``a ... b``) must have every piece present, in order.
        """
        if self.sentences is not None and is_sentence_ref(quote):
            sentence = self.sentences.get(quote)
            return Span(sentence.start, sentence.end) if sentence else None
        pieces = _pieces(quote)
        if not pieces:
            return None
        text = self._norm.text
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
        return Span(start=self._norm.original(first), end=self._norm.original(last - 1) + 1)


def quote_problem(quote: str, index: EssayIndex) -> str | None:
    """Why ``quote`` is not acceptable evidence, or None when it is."""
    if index.sentences is not None and is_sentence_ref(quote):
        sentence = index.sentences.get(quote)
        if sentence is None:
            return (
                f"evidence {quote!r} is not a sentence of this essay; cite one of S1-S{len(index.sentences.sentences)}"
            )
        if sentence.words < MIN_QUOTE_WORDS:
            return (
                f"evidence {quote!r} is too short to be evidence; cite a sentence of at least {MIN_QUOTE_WORDS} words"
            )
        if sentence.ref in index.not_evidence:
            return f"evidence {quote!r} is the title or the question copied out, not the student's answer; cite another"
        return None
    words = " ".join(_pieces(quote)).split()
    if len(words) < MIN_QUOTE_WORDS:
        return f"evidence {quote!r} is too short to be evidence; quote at least {MIN_QUOTE_WORDS} words"
    if index.locate(quote) is None:
        return f"evidence {quote!r} does not appear in the essay; copy a passage word for word"
    return None
