"""Turn one or more validated drafts into per-AO marks (median over samples, level recomputed)."""

from __future__ import annotations

import statistics
from collections import Counter

from schemas.draft import AODraft, MarkingDraft
from schemas.grounding import EssayIndex
from schemas.result import AOMark, Evidence, Flag, FlagCode, StudentFeedback
from schemas.scheme import AssessmentObjective, MarkScheme


def _evidence(quotes: list[str], essay: str, index: EssayIndex) -> list[Evidence]:
    found: list[Evidence] = []
    for quote in quotes:
        span = index.locate(quote)
        if span is None:  # validated drafts never get here; guard the invariant anyway
            raise ValueError(f"quote not in essay after validation: {quote!r}")
        found.append(Evidence(quote=essay[span.start : span.end], start=span.start, end=span.end))
    return found


def _ao_mark(ao: AssessmentObjective, drafts: list[AODraft], essay: str, index: EssayIndex) -> AOMark:
    marks = [d.mark for d in drafts]
    mark = statistics.median_low(marks)
    level = ao.level_for_mark(mark)
    chosen = next(d for d in drafts if d.mark == mark)
    return AOMark(
        ao_id=ao.id,
        ao_name=ao.name,
        level=level.level,
        mark=mark,
        max_marks=ao.max_marks,
        band=(level.min_mark, level.max_mark),
        rationale=chosen.rationale,
        evidence=_evidence(chosen.evidence, essay, index),
        strengths=list(chosen.strengths),
        improvements=list(chosen.improvements),
        sample_marks=marks if len(marks) > 1 else [],
        spread=max(marks) - min(marks),
    )


def aggregate(
    scheme: MarkScheme,
    drafts: list[MarkingDraft],
    essay: str,
    index: EssayIndex,
    *,
    review_spread: int,
) -> tuple[list[AOMark], StudentFeedback, str, list[Flag]]:
    """Per-AO marks, the student feedback, teacher notes and sample-derived flags."""
    ao_marks = [_ao_mark(ao, [d.objectives[ao.id] for d in drafts], essay, index) for ao in scheme.objectives]
    total = sum(m.mark for m in ao_marks)
    representative = min(drafts, key=lambda d: abs(sum(a.mark for a in d.objectives.values()) - total))
    flags: list[Flag] = []
    wide = [m for m in ao_marks if m.spread > review_spread]
    if wide:
        detail = ", ".join(f"{m.ao_id} marks {m.sample_marks}" for m in wide)
        flags.append(Flag(code=FlagCode.INCONSISTENT_SAMPLES, detail=f"samples disagree: {detail}"))
    off_topic_votes = Counter(d.off_topic for d in drafts)
    if off_topic_votes[True] > off_topic_votes[False]:
        flags.append(
            Flag(
                code=FlagCode.OFF_TOPIC,
                detail=f"the model judged the essay off topic in {off_topic_votes[True]} of {len(drafts)} samples",
            )
        )
    feedback = StudentFeedback(
        what_went_well=representative.what_went_well, even_better_if=representative.even_better_if
    )
    return ao_marks, feedback, representative.teacher_notes, flags
