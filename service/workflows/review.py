"""Teacher review: approved marks stored beside the model's draft (the difference is data)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy.orm import Session

from schemas.result import MarkingResult
from schemas.review import ReviewedMark, ReviewMode, ReviewPublic
from schemas.scheme import MarkScheme
from schemas.text import PlainText, StorableText
from service.calibration.importing import MarkedScript
from service.calibration.signals import model_marks
from service.errors import CallerError
from service.persistence.exemplars import ExemplarStore
from service.persistence.stores import StoredMarking

__all__ = ["ReviewCreate", "ReviewMode", "ReviewPublic", "ReviewedMark", "build_review", "exemplar_from_review"]


class ReviewCreate(BaseModel):
    """POST /v1/markings/{id}/review."""

    model_config = ConfigDict(extra="forbid")

    reviewer: PlainText = Field(min_length=1, max_length=200, description="Who approves (name or staff id).")
    marks: dict[str, StrictInt] = Field(
        description="The teacher's final mark per objective id (a JSON integer: not a string, a boolean or 3.0)."
    )
    comments: dict[str, StorableText] = Field(
        default_factory=dict, description="The teacher's comment per objective id."
    )
    overall_comment: StorableText = Field(default="", max_length=5000)
    what_went_well: StorableText | None = Field(
        default=None, max_length=2000, description="What the student is told went well (default: the draft's)."
    )
    even_better_if: StorableText | None = Field(
        default=None, max_length=2000, description="The student's next step (default: the draft's)."
    )
    mode: ReviewMode = Field(
        default="anchored",
        description="How the marks were given: 'blind' when the teacher entered them before the draft was shown "
        "(the teacher page's 'Mark blind'), 'anchored' when the draft was in view. Calibration counts blind marks "
        "always, and anchored ones unless every mark is the draft's (that would teach draftmark its own marks).",
    )


def build_review(
    marking_id: str, body: ReviewCreate, result: MarkingResult, scheme: MarkScheme, approved_at: datetime
) -> ReviewPublic:
    """Validate the teacher's marks against the scheme (fix-it messages) and recompute levels."""
    expected = list(scheme.objective_ids)
    if sorted(body.marks) != sorted(expected):
        raise CallerError(f"give a mark for exactly these objectives: {expected}; got {sorted(body.marks)}")
    unknown = sorted(set(body.comments) - set(expected))
    if unknown:
        raise CallerError(f"comments name unknown objectives {unknown}; use {expected}")
    draft = {m.ao_id: m.mark for m in result.ao_marks}
    marks = []
    for ao in scheme.objectives:
        mark = body.marks[ao.id]
        if not ao.min_marks <= mark <= ao.max_marks:
            raise CallerError(f"{ao.id}: mark {mark} is outside {ao.min_marks}-{ao.max_marks}")
        comment = body.comments.get(ao.id, "")
        if len(comment) > 5000:
            raise CallerError(f"{ao.id}: comments are limited to 5,000 characters")
        marks.append(
            ReviewedMark(
                ao_id=ao.id, mark=mark, level=ao.level_for_mark(mark).level, draft_mark=draft[ao.id], comment=comment
            )
        )
    return ReviewPublic(
        marking_id=marking_id,
        reviewer=body.reviewer,
        approved_at=approved_at,
        marks=marks,
        total=sum(m.mark for m in marks),
        draft_total=result.total,
        max_total=result.max_total,
        overall_comment=body.overall_comment,
        mode=body.mode,
        what_went_well=result.feedback.what_went_well if body.what_went_well is None else body.what_went_well,
        even_better_if=result.feedback.even_better_if if body.even_better_if is None else body.even_better_if,
    )


def exemplar_from_review(
    owner: str, marking: StoredMarking, review: ReviewPublic, scheme: MarkScheme
) -> Callable[[Session], object]:
    """The write that makes an approved script an exemplar (the teacher's marks; the model's own marks as its signal).

    It runs inside the approval's transaction (``Store.save_review(also=...)``): the approval and
    its exemplar are stored together or not at all. The calibration is refitted afterwards, in the
    background (``Refits``).
    """
    script = MarkedScript(
        essay=marking.essay, marks={m.ao_id: m.mark for m in review.marks}, external_id=marking.external_id
    )
    own = model_marks(marking.result)
    model = marking.result.provenance.model if own is not None else None
    return lambda s: ExemplarStore.upsert(
        s,
        owner,
        scheme,
        script,
        source="approved",
        marking_id=marking.id,
        llm_marks=own,
        llm_model=model,
        basis=review.basis,
    )
