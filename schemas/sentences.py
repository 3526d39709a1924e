"""Number an essay's sentences so a model can cite evidence as ``"S12"`` instead of copying text.

Copying whole sentences cost a small local model most of its output tokens and tempted it to
paraphrase; a sentence number costs two or three tokens and is verbatim by construction. The
code maps each number back to the exact text and character offsets, so results still carry
real quotations.

Every non-blank character of the essay belongs to exactly one numbered piece, in order, so the
numbered rendering shows the whole essay. Sentences end at ``.``, ``!`` or ``?`` (plus closing
quotes or brackets) followed by white space and a word that does not start in lower case, or at
a line break; a full stop after a common abbreviation ("Mr.", "e.g.", "c.", "U.S.S.R.") or an
initial ("J. Stalin") does not end a sentence. Long sentences are cut into pieces of at most
``MAX_SENTENCE_WORDS`` words (and ``MAX_SENTENCE_CHARS`` characters) so one reference never
stands for a whole run-on paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SENTENCE_WORDS = 40
MAX_SENTENCE_CHARS = 400
MIN_EVIDENCE_WORDS = 2
SENTENCE_REF = re.compile(r"S([1-9][0-9]{0,4})")

_CANDIDATE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_LINE_BREAK = re.compile(r"[^\S\n]*\n\s*")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "sr",
        "jr",
        "gen",
        "col",
        "lt",
        "capt",
        "sgt",
        "gov",
        "pres",
        "rev",
        "hon",
        "vs",
        "cf",
        "c",
        "ca",
        "approx",
        "vol",
        "p",
        "pp",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mt",
        "ft",
        "inc",
        "ltd",
        "corp",
        "dept",
        "univ",
    ]
)
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Sentence:
    """One numbered piece of the essay: ``essay[start:end]``, no surrounding white space."""

    number: int
    start: int
    end: int
    text: str
    new_paragraph: bool

    @property
    def ref(self) -> str:
        """How the model cites it: ``S<number>``."""
        return f"S{self.number}"

    @property
    def words(self) -> int:
        """Its word count."""
        return len(self.text.split())


def _is_abbreviation(line: str, dot: int) -> bool:
    """Whether the single full stop at ``line[dot]`` belongs to the word before it."""
    word_start = dot
    while word_start > 0 and not line[word_start - 1].isspace():
        word_start -= 1
    word = line[word_start:dot].lstrip("\"'(\u201c\u2018[")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():
        return True  # an initial
    return word.lower() in _ABBREVIATIONS or _DOTTED.fullmatch(word) is not None


def _sentence_spans(line: str) -> list[tuple[int, int]]:
    """Start/end offsets of the sentences in one line (no line breaks inside)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE_END.finditer(line):
        end = match.end()
        after = len(line) - len(line[end:].lstrip())
        if after < len(line) and line[after].islower():
            continue
        if match.group().rstrip("\"'\u201d\u2019)]") == "." and _is_abbreviation(line, match.start()):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(line)))
    return [(s, e) for s, e in spans if line[s:e].strip()]


def _pieces(text: str, offset: int) -> list[tuple[int, int]]:
    """``text`` (one sentence) cut into bounded pieces, as absolute, white-space-trimmed offsets."""
    trimmed = text.strip()
    if len(trimmed) <= MAX_SENTENCE_CHARS and len(trimmed.split()) <= MAX_SENTENCE_WORDS:
        # Most sentences fit one piece: from the first word's start to the last word's end (what the
        # loop below finds, found with C-level string methods; str.split and \S agree on white space).
        if not trimmed:
            return []
        start = len(text) - len(text.lstrip())
        return [(offset + start, offset + start + len(trimmed))]
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    pieces: list[tuple[int, int]] = []
    first = 0
    while first < len(words):
        last = min(first + MAX_SENTENCE_WORDS, len(words)) - 1
        while last > first and words[last][1] - words[first][0] > MAX_SENTENCE_CHARS:
            last -= 1
        start, end = words[first][0], words[last][1]
        if end - start > MAX_SENTENCE_CHARS:  # one "word" longer than the limit: cut it
            for cut in range(start, end, MAX_SENTENCE_CHARS):
                pieces.append((offset + cut, offset + min(cut + MAX_SENTENCE_CHARS, end)))
        else:
            pieces.append((offset + start, offset + end))
        first = last + 1
    return pieces


def split_sentences(essay: str) -> list[Sentence]:
    """The essay's numbered pieces, in order, covering every non-blank character once."""
    sentences: list[Sentence] = []
    line_start = 0
    new_paragraph = True
    for brk in [*_LINE_BREAK.finditer(essay), None]:
        line_end = brk.start() if brk else len(essay)
        line = essay[line_start:line_end]
        for s, e in _sentence_spans(line):
            for start, end in _pieces(line[s:e], line_start + s):
                sentences.append(
                    Sentence(len(sentences) + 1, start, end, essay[start:end], new_paragraph and bool(sentences))
                )
                new_paragraph = False
        if brk is not None:
            new_paragraph = new_paragraph or brk.group().count("\n") > 1
            line_start = brk.end()
    return sentences


class SentenceTable:
    """An essay's numbered sentences, looked up by reference."""

    def __init__(self, essay: str) -> None:
        self.sentences = split_sentences(essay)

    def get(self, ref: str) -> Sentence | None:
        """The sentence ``ref`` ("S12") names, or None."""
        match = SENTENCE_REF.fullmatch(ref.strip())
        if match is None:
            return None
        number = int(match.group(1))
        return self.sentences[number - 1] if number <= len(self.sentences) else None

    def citable_refs(self) -> list[str]:
        """References worth citing as evidence (pieces of at least two words)."""
        return [s.ref for s in self.sentences if s.words >= MIN_EVIDENCE_WORDS]


def is_sentence_ref(text: str) -> bool:
    """Whether ``text`` is shaped like a sentence reference."""
    return SENTENCE_REF.fullmatch(text.strip()) is not None
