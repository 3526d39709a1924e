"""Which of a scheme's indicative points an essay addresses: lexical match of each point against each sentence.

A point's terms are its content words (stemmed by their first five letters) less the question's
own words (every sentence about Stalin names Stalin). Each term is weighted by how rare it is
across the scheme's points (``party`` occurs in many points and says little; ``Testament`` in one
and says much). A sentence addresses a point when it shares at least ``MIN_TERMS`` of its terms,
with a name or a year among them or two terms of that point only, weighing ``MIN_WEIGHT`` together;
a point about someone ("Trotsky's weaknesses") needs a sentence that names them. Deliberately plain
and explainable; its precision and recall are for an annotated eval to measure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from schemas.reading import ObjectiveCoverage, Passage, PointCoverage
from schemas.scheme import MarkScheme
from schemas.sentences import Sentence, split_sentences

MIN_TERMS = 2
MIN_WEIGHT = 4.0
"""Shared weight a sentence needs: about two terms found in no other point (each weighs log(1 + points))."""
MAX_SENTENCES = 2

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_STOPWORDS = """
a about above after again against all also an and any are as at be because been before being between both but
by can could did do does doing during each few for from further had has have having he her here his how i if
in into is it its itself just may more most much must no nor not of off on once one only or other our out over
own same she should so some such than that the their them then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your two three
many made make used use using turned let brought new less well first later
"""
_STOP = frozenset(_STOPWORDS.split())


_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "es", "ed", "s", "ly")


def _stem(word: str) -> str:
    """A light suffix-stripping stem ("suppressed" and "suppress" meet; "understand" stays apart from "under")."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> list[tuple[str, bool]]:
    """(stem, distinctive-by-form) for each content word: capitalised words and years are distinctive."""
    found = []
    for i, word in enumerate(_WORD.findall(text)):
        stem = _content_stem(word)
        if stem is None:
            continue
        distinctive = word.isdigit() or (word[0].isupper() and i > 0)
        found.append((stem, distinctive))
    return found


@lru_cache(maxsize=65536)
def _content_stem(word: str) -> str | None:
    """The stem of a content word; None for a stop word or a short word that is not a number."""
    if word.lower() in _STOP or (len(word) < 3 and not word.isdigit()):
        return None
    return _stem(word)


_YEAR = re.compile(r"\b1[5-9]\d\d\b|\b20\d\d\b")
_YEAR_RANGE = re.compile(r"\b(1[5-9]\d\d|20\d\d)\s*[-–]\s*(\d\d)\b")


def years(text: str) -> set[str]:
    """Four-digit years, and the second year of a range written short ("1923-25" → 1925)."""
    years = set(_YEAR.findall(text))
    for first, second in _YEAR_RANGE.findall(text):
        years.add(first[:2] + second)
    return years


class PointIndex:
    """The scheme's points with their weighted terms (built once per scheme)."""

    def __init__(self, scheme: MarkScheme) -> None:
        question = {stem for stem, _ in _terms(scheme.question + " " + scheme.title)}
        points = [(ao.id, p) for ao in scheme.objectives for p in ao.indicative_content]
        self.points: list[tuple[str, str, dict[str, float], set[str], str | None]] = []
        self._term_sets: list[frozenset[str]] = []
        """Each point's terms (its weights' keys), kept as a set for the per-sentence intersections."""
        term_sets = []
        for _, point in points:
            terms = {stem: d for stem, d in _terms(point) if stem not in question}
            terms |= {year: True for year in years(point)}
            term_sets.append(terms)
        frequency: dict[str, int] = {}
        for terms in term_sets:
            for stem in terms:
                frequency[stem] = frequency.get(stem, 0) + 1
        n = max(1, len(points))
        for (ao_id, point), terms in zip(points, term_sets, strict=True):
            weights = {stem: math.log(1 + n / frequency[stem]) for stem in terms}
            named = {stem for stem, d in terms.items() if d}
            head = _WORD.match(point.strip())
            whose = head.group(0) if head else ""
            subject = _stem(whose) if whose[:1].isupper() and whose.lower().endswith(("'s", "’s")) else None
            self.points.append((ao_id, point, weights, named, subject))
            self._term_sets.append(frozenset(weights))

    def coverage(self, scheme: MarkScheme, sentences: Sequence[Sentence]) -> list[ObjectiveCoverage]:
        """Per objective: the points addressed (with their best sentences) and the points missed."""
        sentence_terms = [{stem for stem, _ in _terms(s.text)} | years(s.text) for s in sentences]
        result = {ao.id: ObjectiveCoverage(ao_id=ao.id) for ao in scheme.objectives}
        unique = math.log(1 + len(self.points)) - 1e-9
        for (ao_id, point, weights, named, subject), point_terms in zip(self.points, self._term_sets, strict=True):
            scored = []
            for sentence, terms in zip(sentences, sentence_terms, strict=True):
                if subject is not None and subject not in terms:
                    continue
                shared = terms & point_terms
                if len(shared) < MIN_TERMS:  # the first test below; most sentence/point pairs stop here
                    continue
                weight = sum(weights[t] for t in shared)
                telling = bool(shared & named) or sum(1 for t in shared if weights[t] >= unique) >= MIN_TERMS
                if len(shared) >= MIN_TERMS and telling and weight >= MIN_WEIGHT:
                    scored.append((weight, sentence))
            scored.sort(key=lambda ws: (-ws[0], ws[1].number))
            if scored:
                shown = [Passage(ref=s.ref, quote=s.text, start=s.start, end=s.end) for _, s in scored[:MAX_SENTENCES]]
                result[ao_id].addressed.append(PointCoverage(point=point, sentences=shown))
            else:
                result[ao_id].missing.append(point)
        return list(result.values())


@lru_cache(maxsize=32)
def point_index(scheme: MarkScheme) -> PointIndex:
    """The scheme's ``PointIndex``, built once per scheme."""
    return PointIndex(scheme)


def coverage_shares(text: str, scheme: MarkScheme) -> dict[str, float]:
    """Each objective's share of its indicative points the text addresses (the calibration signal).

    An objective without points of its own gets the share of all the scheme's points.
    """
    found = point_index(scheme).coverage(scheme, split_sentences(text))
    addressed = sum(len(c.addressed) for c in found)
    points = sum(len(c.addressed) + len(c.missing) for c in found)
    overall = addressed / points if points else 0.0
    return {
        c.ao_id: len(c.addressed) / (len(c.addressed) + len(c.missing)) if c.addressed or c.missing else overall
        for c in found
    }
