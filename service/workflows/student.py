"""The one function that says what a student receives (``student_view``): sheet, preview, LMS and exports use it."""

from __future__ import annotations

from schemas.result import AOMark, MarkingResult
from schemas.review import ReviewPublic
from schemas.student import StudentMark, StudentView


def _draft_remark(ao: AOMark) -> str:
    parts = [ao.rationale]
    if ao.strengths:
        parts.append("Strengths: " + "; ".join(ao.strengths))
    if ao.improvements:
        parts.append("Next steps: " + "; ".join(ao.improvements))
    return "\n".join(p for p in parts if p)


def student_view(result: MarkingResult, review: ReviewPublic | None, *, label: str) -> StudentView:
    """What leaves the tool for ``result``, given its latest ``review`` (if any).

    With a review: the teacher's mark for every objective; the teacher's comment where one was
    written, the model's remark where the teacher kept the draft mark without a comment, and no
    remark where the teacher changed the mark without one (the model's rationale argued for the
    other mark); "what went well" and "even better if" as the teacher approved them (the draft's
    unless edited); the teacher's overall comment. Without one: the draft, marked as such.
    """
    if review is None:
        return StudentView(
            source="draft",
            marks=[
                StudentMark(
                    ao_id=m.ao_id,
                    ao_name=m.ao_name,
                    level=m.level,
                    mark=m.mark,
                    max_marks=m.max_marks,
                    comment=_draft_remark(m),
                )
                for m in result.ao_marks
            ],
            total=result.total,
            max_total=result.max_total,
            what_went_well=result.feedback.what_went_well,
            even_better_if=result.feedback.even_better_if,
            teacher_note="",
            label=label,
        )
    drafts = {m.ao_id: m for m in result.ao_marks}
    marks = []
    for approved in review.marks:
        draft = drafts[approved.ao_id]
        if approved.comment:
            remark = approved.comment
        elif approved.mark == draft.mark:
            remark = _draft_remark(draft)
        else:
            remark = ""
        marks.append(
            StudentMark(
                ao_id=approved.ao_id,
                ao_name=draft.ao_name,
                level=approved.level,
                mark=approved.mark,
                max_marks=draft.max_marks,
                comment=remark,
            )
        )
    return StudentView(
        source="approved",
        marks=marks,
        total=review.total,
        max_total=review.max_total,
        what_went_well=result.feedback.what_went_well if review.what_went_well is None else review.what_went_well,
        even_better_if=result.feedback.even_better_if if review.even_better_if is None else review.even_better_if,
        teacher_note=review.overall_comment,
        label=label,
        approved_by=review.reviewer,
        approved_at=review.approved_at,
        released_at=review.released_at,
    )
