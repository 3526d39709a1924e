"""Feedback held to the reading: praise the marks do not support is a fault, and blanks are filled from facts.

The model phrases the feedback; code checks it against what the reading found and the levels
given. What fails is re-asked like a misquote and, when the re-asks run out, left out
(``schemas.draft.without``); a left-out sentence is then written from the reading's facts
(``from_facts``), so a student never gets an empty or a false sentence.
"""

from __future__ import annotations

import re

from schemas.draft import Fault, MarkingDraft
from schemas.reading import ObjectiveCoverage, Reading
from schemas.scheme import MarkScheme

PRAISE = re.compile(
    r"\b(comprehensive|excellent|outstanding|thorough(?:ly)?|detailed|in-depth|insightful|sophisticated|"
    r"well[- ]developed|impressive|perfect|exceptional|superb)\b",
    re.I,
)
_ADVICE = re.compile(
    r"^\W*(?:to improve,?\s*)?(add|explain|include|go|carry|end|use|write|discuss|link|compare|develop|support|"
    r"consider|focus|try|make|give|show|analyse|analyze|evaluate|weigh|reach|extend|cover|mention|check|avoid|"
    r"structure|plan|finish|conclude|judge|connect|expand|describe|identify|stay|keep|spell|proofread)\b"
    r"|\b(you (?:could|should|need|might|can|must)|try to|next time|it would help|would be (?:better|stronger))\b",
    re.I,
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")
_YEAR = re.compile(r"\b(1\d\d\d|20\d\d)\b")
_NAME_STOP = frozenset(
    {"with", "from", "their", "were", "that", "this", "which", "against", "over", "into", "then", "than", "more"}
    | {"most", "very", "what", "whom", "when", "where", "after", "before", "under", "between"}
)
_CLAIMS_CONCLUSION = re.compile(r"\b(conclusion|conclude[sd]?|judgement|judgment)\b", re.I)
_NEGATED = re.compile(r"\b(no|not|without|lacks?|missing|add|needs?|could|should)\b", re.I)


def _name_terms(text: str) -> set[str]:
    """Content words of a point's name, matched on their first five letters ("factions" ~ "faction")."""
    return {w.lower()[:5] for w in _WORD.findall(text) if len(w) > 3 and w.lower() not in _NAME_STOP}


def point_name(point: str) -> str:
    """A point's name: the text before its first colon, bracket or semicolon ("General Secretary (1922): ...")."""
    return re.split(r"[:(;]", point, maxsplit=1)[0].strip()


def mentions(sentence: str, point: str, ignore: frozenset[str] = frozenset()) -> bool:
    """``sentence`` names ``point``: two of its name's content words, or all of them when it has one or two.

    ``ignore``: words (their first five letters) that name nothing in particular here, e.g. the question's own.
    """
    name = _name_terms(point_name(point)) - ignore
    if not name:
        return False
    return len(name & _name_terms(sentence)) >= min(2, len(name))


def question_terms(scheme: MarkScheme) -> frozenset[str]:
    """The question's content words: naming them says nothing about one essay."""
    return frozenset(_name_terms(scheme.question))


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _TOKEN.findall(text)]


def quotes_essay(text: str, essay: str, run: int = 6) -> bool:
    """``text`` carries at least ``run`` consecutive words of ``essay``."""
    words, body = _words(text), " " + " ".join(_words(essay)) + " "
    return any(" " + " ".join(words[i : i + run]) + " " in body for i in range(len(words) - run + 1))


def names_reading_fact(text: str, reading: Reading, scheme: MarkScheme, essay: str = "") -> bool:
    """The text names something this essay does.

    A point the reading found, its conclusion, a year it uses, or six or more of its words in order.
    """
    if essay and quotes_essay(text, essay):
        return True
    ignore = question_terms(scheme)
    for coverage in reading.coverage:
        for point in coverage.addressed:
            if mentions(text, point.point, ignore) or any(
                _opening(p.quote, 6).rstrip("…") in text for p in point.sentences
            ):
                return True
    if reading.conclusion is not None and _CLAIMS_CONCLUSION.search(text) and not _NEGATED.search(text):
        return True
    essay_years = {str(y) for y in ([reading.latest_year] if reading.latest_year else [])}
    return bool(set(_YEAR.findall(text)) & essay_years)


def _share_addressed(reading: Reading) -> tuple[int, int]:
    addressed = sum(len(c.addressed) for c in reading.coverage)
    return addressed, addressed + sum(len(c.missing) for c in reading.coverage)


def _low(draft: MarkingDraft, scheme: MarkScheme, ao_id: str) -> bool:
    ao = scheme.objective(ao_id)
    top = max(lv.level for lv in ao.levels)
    return draft.objectives[ao_id].level * 2 <= top


def praise_faults(draft: MarkingDraft, scheme: MarkScheme, reading: Reading, essay: str = "") -> list[Fault]:
    """Praise at a bottom-half level or total, praise given as a next step, and a conclusion the essay lacks."""
    faults: list[Fault] = []
    for ao_id in scheme.objective_ids:
        if ao_id in draft.objectives and _low(draft, scheme, ao_id):
            found = PRAISE.search(draft.objectives[ao_id].rationale)
            if found:
                faults.append(
                    Fault(
                        ao_id,
                        f"{ao_id}: the rationale calls the work {found.group(0)!r} at level "
                        f"{draft.objectives[ao_id].level}; say what this essay does at that level",
                        field="rationale",
                    )
                )
    total = sum(d.mark for d in draft.objectives.values())
    praise = PRAISE.search(draft.what_went_well)
    addressed, points = _share_addressed(reading)
    if praise and total * 2 <= scheme.total_marks:
        faults.append(
            Fault(
                "what_went_well",
                f"what_went_well calls the essay {praise.group(0)!r} but it earns {total}/{scheme.total_marks}; "
                "name one thing it really does well",
                field="what_went_well",
            )
        )
    elif praise and 2 * addressed < points:
        faults.append(
            Fault(
                "what_went_well",
                f"what_went_well calls the essay {praise.group(0)!r} but it addresses {addressed} of the scheme's "
                f"{points} indicative points; name one thing it really does well",
                field="what_went_well",
            )
        )
    elif points and not names_reading_fact(draft.what_went_well, reading, scheme, essay):
        faults.append(
            Fault(
                "what_went_well",
                "what_went_well names nothing this essay does; name one point it makes (for example "
                f"{_points_made(reading)}), in its own words",
                field="what_went_well",
            )
        )
    elif (
        reading.conclusion is None
        and _CLAIMS_CONCLUSION.search(draft.what_went_well)
        and not _NEGATED.search(draft.what_went_well)
    ):
        faults.append(
            Fault(
                "what_went_well",
                "what_went_well praises a conclusion or judgement, but the essay ends without one",
                field="what_went_well",
            )
        )
    faults += _same_rationales(draft)
    faults += _rationales_without_facts(draft, reading, scheme, essay, already={f.where for f in faults})
    praise = PRAISE.search(draft.even_better_if)
    if draft.even_better_if.strip() and not _ADVICE.search(draft.even_better_if):
        faults.append(
            Fault(
                "even_better_if",
                "even_better_if describes the essay instead of naming a next step; say what the student should do "
                "(for example: add, explain, carry on to...)",
                field="even_better_if",
            )
        )
    elif praise and not _NEGATED.search(draft.even_better_if):
        faults.append(
            Fault(
                "even_better_if",
                f"even_better_if praises ({praise.group(0)!r}) instead of naming the most useful next step",
                field="even_better_if",
            )
        )
    elif draft.even_better_if.strip() and not names_a_gap(draft.even_better_if, reading, scheme):
        missing = [p for c in reading.coverage for p in c.missing]
        if missing or reading.conclusion is None or reading.stops_short:
            example = _head(missing[0]) if missing else "the missing conclusion"
            faults.append(
                Fault(
                    "even_better_if",
                    "even_better_if names nothing this essay misses; name the most useful point it misses "
                    f"(for example {example}), its missing conclusion, or the years it does not reach",
                    field="even_better_if",
                )
            )
    return faults


def names_a_gap(text: str, reading: Reading, scheme: MarkScheme) -> bool:
    """The advice names something this essay misses: a point, its conclusion, or the years it does not reach.

    Only checked where the reading has indicative points to judge by (a scheme without them passes).
    """
    if not any(c.addressed or c.missing for c in reading.coverage):
        return True
    ignore = question_terms(scheme)
    if any(mentions(text, point, ignore) for c in reading.coverage for point in c.missing):
        return True
    if reading.conclusion is None and _CLAIMS_CONCLUSION.search(text):
        return True
    if reading.stops_short and reading.period is not None:
        years = {int(y) for y in _YEAR.findall(text)}
        return any(reading.latest_year is not None and y > reading.latest_year for y in years)
    return False


def names_objective_fact(
    text: str, coverage: ObjectiveCoverage, reading: Reading, scheme: MarkScheme, essay: str
) -> bool:
    """A rationale names something about this essay for its objective: a point it makes or misses, or a fact."""
    ignore = question_terms(scheme)
    if any(mentions(text, point, ignore) for point in coverage.missing):
        return True
    if reading.conclusion is None and _CLAIMS_CONCLUSION.search(text) and _NEGATED.search(text):
        return True  # "no conclusion", "does not reach a judgement": true of this essay
    if reading.stops_short and reading.latest_year is not None and str(reading.latest_year) in text:
        return True
    return names_reading_fact(text, reading, scheme, essay)


def _rationales_without_facts(
    draft: MarkingDraft, reading: Reading, scheme: MarkScheme, essay: str, already: set[str]
) -> list[Fault]:
    """A rationale that names nothing about this essay (no point made or missed, no quote, no date) says nothing."""
    faults = []
    for coverage in reading.coverage:
        ao_id = coverage.ao_id
        if ao_id in already or ao_id not in draft.objectives or not (coverage.addressed or coverage.missing):
            continue
        if not names_objective_fact(draft.objectives[ao_id].rationale, coverage, reading, scheme, essay):
            example = _head(coverage.addressed[0].point) if coverage.addressed else _head(coverage.missing[0])
            faults.append(
                Fault(
                    ao_id,
                    f"{ao_id}: the rationale names nothing about this essay; say which points it makes or misses "
                    f"(for example {example})",
                    field="rationale",
                )
            )
    return faults


def _points_made(reading: Reading) -> str:
    made = [_head(p.point) for c in reading.coverage for p in c.addressed][:2]
    return " or ".join(made) if made else "a fact or date it uses"


def _same_rationales(draft: MarkingDraft) -> list[Fault]:
    """A rationale repeated word for word for another objective says nothing about this one."""
    seen: set[str] = set()
    faults = []
    for ao_id, ao_draft in draft.objectives.items():
        key = " ".join(ao_draft.rationale.lower().split())
        if key and key in seen:
            faults.append(
                Fault(
                    ao_id,
                    f"{ao_id}: the rationale repeats another objective's; say why this level for {ao_id}",
                    field="rationale",
                )
            )
        seen.add(key)
    return faults


def _head(point: str) -> str:
    """A point's name: the text before its first colon or bracket ("General Secretary (1922): ...")."""
    head = point_name(point)
    first, _, rest = head.partition(" ")
    return f"{first.lower()} {rest}" if first in ("The", "A", "An", "How") and rest else head


def _opening(quote: str, words: int = 12) -> str:
    parts = quote.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def from_facts_well(reading: Reading) -> str:
    """What went well, from the best-evidenced point the essay covers (or how it is built)."""
    for coverage in reading.coverage:
        if coverage.addressed:
            point = coverage.addressed[0]
            return f'You bring in {_head(point.point)}: "{_opening(point.sentences[0].quote)}"'
    if reading.conclusion is not None:
        return f'You end with a judgement: "{_opening(reading.conclusion.quote)}"'
    return "You answer in continuous prose; now tie each paragraph to the question."


def from_facts_next(reading: Reading, weakest: ObjectiveCoverage | None) -> str:
    """The most useful next step: the period not reached, a missing conclusion, or a missing point."""
    missing = [p for c in reading.coverage for p in c.missing]
    if reading.stops_short and reading.period is not None and reading.latest_year is not None:
        later = _later_points(missing, reading.latest_year)
        named = f", for example {_head(later[0])}" if later else ""
        return (
            f"Carry your answer on from {reading.latest_year} to {reading.period[1]}, the end of the period "
            f"the question asks about{named}."
        )
    if reading.conclusion is None:
        return "End with a conclusion that weighs the factors and says which mattered most, and why."
    if weakest is not None and weakest.missing:
        return f"Add {_head(weakest.missing[0])}, and explain how it helped."
    if missing:
        return f"Add {_head(missing[0])}, and explain how it helped."
    return "Explain how each factor led to the outcome the question names, not just what happened."


def _later_points(points: list[str], after: int) -> list[str]:
    """Points dated after ``after`` (by the years they name), earliest first: what lies in the years not reached."""
    dated = []
    for point in points:
        years = [int(y) for y in _YEAR.findall(point)] + [
            int(a[:2] + b) for a, b in re.findall(r"\b(1\d\d\d)-(\d\d)\b", point)
        ]
        later = [y for y in years if y > after]
        if later:
            dated.append((min(later), point))
    return [p for _, p in sorted(dated, key=lambda d: d[0])]


def from_facts_rationale(coverage: ObjectiveCoverage | None, level: int) -> str:
    """A rationale naming what the essay covers for the objective (used when the model's was left out)."""
    if coverage is None or not (coverage.addressed or coverage.missing):
        return f"Level {level}."
    total = len(coverage.addressed) + len(coverage.missing)
    if coverage.addressed:
        named = "; ".join(_head(p.point) for p in coverage.addressed[:2])
        return f"Level {level}: covers {len(coverage.addressed)} of {total} indicative points ({named})."
    example = _head(coverage.missing[0])
    return f"Level {level}: none of the {total} indicative points is addressed, for example {example}."
