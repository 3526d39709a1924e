"""How an essay is built, as descriptors ask: a concluding judgement, and how far into the question's period it gets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from schemas.reading import Passage
from schemas.scheme import MarkScheme
from schemas.sentences import Sentence
from service.reading.coverage import years

_CONCLUDING = re.compile(
    r"\b(in conclusion|to conclude|in summary|to sum up|to summari[sz]e|overall|all in all|ultimately|on balance|"
    r"in my (?:judgement|judgment|view|opinion)|weigh(?:ing|ed)?|most important|main reason|mainly|mattered most|"
    r"more important|less important|decisive|above all|the key (?:reason|factor)|therefore|i think|i believe)\b",
    re.I,
)
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@lru_cache(maxsize=64)
def _question_words(question: str, title: str) -> frozenset[str]:
    return frozenset(_words(question)) | frozenset(_words(title))


def copies_question(sentence: Sentence, scheme: MarkScheme) -> bool:
    """A sentence that is the question or the title written out (or most of it)."""
    return _copies(sentence.text, scheme.question, scheme.title)


@lru_cache(maxsize=1024)
def _copies(text: str, question: str, title: str) -> bool:
    """``copies_question`` by text: a marking asks for each sentence twice (its evidence, then its body)."""
    mine = _words(text)
    theirs = _question_words(question, title)
    return bool(mine) and sum(1 for w in mine if w in theirs) >= 0.8 * len(mine)


def body(sentences: Sequence[Sentence], scheme: MarkScheme) -> list[Sentence]:
    """The sentences after the introduction: question copies and the first real paragraph left out."""
    own = [s for s in sentences if not copies_question(s, scheme)]
    starts = [i for i, s in enumerate(own) if s.new_paragraph and i > 0]
    return own[starts[0] :] if starts else []


def conclusion(sentences: Sequence[Sentence]) -> Passage | None:
    """The first sentence of the last paragraph that concludes or weighs, if there is one.

    A concluding judgement, not a heading: "overall", "the most important", "in my judgement", "therefore"...
    """
    last = [i for i, s in enumerate(sentences) if s.new_paragraph]
    final = sentences[last[-1] :] if last else list(sentences)
    for sentence in final:
        if _CONCLUDING.search(sentence.text):
            return Passage(ref=sentence.ref, quote=sentence.text, start=sentence.start, end=sentence.end)
    return None


def period(scheme: MarkScheme) -> tuple[int, int] | None:
    """The years the question covers: the span of the years its question, title and objectives name."""
    text = " ".join([scheme.question, scheme.title, *(ao.description or "" for ao in scheme.objectives)])
    found = sorted(int(y) for y in years(text))
    return (found[0], found[-1]) if found else None


def latest_year(sentences: Sequence[Sentence], scheme: MarkScheme) -> int | None:
    """The latest year the essay's body names.

    An introduction's framing dates, question copies and the question's own years ("power in 1929",
    said again) are left aside.
    """
    echoed = years(scheme.question)
    found = [int(y) for s in body(sentences, scheme) for y in years(s.text) - echoed]
    return max(found) if found else None
