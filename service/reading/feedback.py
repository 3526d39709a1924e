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
_CLAIMS_CONCLUSION = re.compile(r"\b(conclusion|conclude[sd]?|judgement|judgment)\b", re.I)
_NEGATED = re.compile(r"\b(no|not|without|lacks?|missing|add|needs?|could|should)\b", re.I)


def _low(draft: MarkingDraft, scheme: MarkScheme, ao_id: str) -> bool:
    ao = scheme.objective(ao_id)
    top = max(lv.level for lv in ao.levels)
    return draft.objectives[ao_id].level * 2 <= top


def praise_faults(draft: MarkingDraft, scheme: MarkScheme, reading: Reading) -> list[Fault]:
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
    if praise and total * 2 <= scheme.total_marks:
        faults.append(
            Fault(
                "what_went_well",
                f"what_went_well calls the essay {praise.group(0)!r} but it earns {total}/{scheme.total_marks}; "
                "name one thing it really does well",
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
    return faults


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
    head = re.split(r"[:(;]", point, maxsplit=1)[0].strip()
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
        named = f", for example {_head(missing[0])}" if missing else ""
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


def from_facts_rationale(coverage: ObjectiveCoverage | None, level: int) -> str:
    """A rationale naming what the essay covers for the objective (used when the model's was left out)."""
    if coverage is None or not (coverage.addressed or coverage.missing):
        return f"Level {level}."
    total = len(coverage.addressed) + len(coverage.missing)
    if coverage.addressed:
        named = "; ".join(_head(p.point) for p in coverage.addressed[:2])
        return f"Level {level}: covers {len(coverage.addressed)} of {total} indicative points ({named})."
    return f"Level {level}: none of the {total} indicative points is addressed."
