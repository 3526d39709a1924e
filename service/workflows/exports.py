"""Stored results in LMS shapes: the teacher's approved marks once there are some, else the draft.

What leaves draftmark is what the teacher approved. Every export says which it carries
(``source: "approved" | "draft"``, who approved and when); a draft never releases itself (LTI
``gradingProgress: PendingManual``). The model's draft stays available for audit at
``GET /v1/markings/{id}``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.result import MarkingResult
from service.persistence.stores import BatchView
from service.workflows.review import ReviewPublic
from service.workflows.student import student_view

Source = Literal["approved", "draft"]


@dataclass(frozen=True)
class ReleasedMark:
    """One objective as it leaves the tool."""

    ao_id: str
    ao_name: str
    mark: int
    max_marks: int
    remark: str


@dataclass(frozen=True)
class Released:
    """A marking as it leaves the tool: approved marks and comments when reviewed, else the draft."""

    source: Source
    marks: list[ReleasedMark]
    total: int
    max_total: int
    comment: str
    approved_by: str | None
    approved_at: datetime | None

    def stamp(self) -> dict[str, Any]:
        """The fields every export carries to say what it is."""
        return {
            "source": self.source,
            "approved_by": self.approved_by,
            "approved_at": _iso(self.approved_at) if self.approved_at else None,
        }


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def released(result: MarkingResult, review: ReviewPublic | None, *, label: str = "") -> Released:
    """What leaves the tool for ``result``: ``student_view``, in the exports' shape (one definition)."""
    view = student_view(result, review, label=label)
    return Released(
        source=view.source,
        marks=[ReleasedMark(m.ao_id, m.ao_name, m.mark, m.max_marks, m.comment) for m in view.marks],
        total=view.total,
        max_total=view.max_total,
        comment=view.comment(),
        approved_by=view.approved_by,
        approved_at=view.approved_at,
    )


def moodle_marking_guide(out: Released) -> dict[str, Any]:
    """Moodle advanced grading (marking guide) data: criterion -> remark + score."""
    return {
        "grade": out.total,
        "advancedgradingdata": {
            "guide": {
                "criteria": [
                    {
                        "criterionshortname": m.ao_id,
                        "criterionname": m.ao_name,
                        "remark": m.remark,
                        "remarkformat": 1,
                        "score": m.mark,
                        "maxscore": m.max_marks,
                    }
                    for m in out.marks
                ]
            }
        },
        "feedback": out.comment,
        "draft": out.source == "draft",
        **out.stamp(),
    }


def canvas_rubric_assessment(out: Released, criterion_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """Canvas submission update body: ``rubric_assessment[criterion_id] = {points, comments}``."""
    ids = criterion_ids or {}
    return {
        "rubric_assessment": {ids.get(m.ao_id, m.ao_id): {"points": m.mark, "comments": m.remark} for m in out.marks},
        "comment": {"text_comment": out.comment},
        **out.stamp(),
    }


def lti_ags_score(out: Released, user_id: str) -> dict[str, Any]:
    """An LTI 1.3 AGS Score: ``FullyGraded`` once approved; a draft stays ``PendingManual``."""
    approved = out.source == "approved"
    return {
        "userId": user_id,
        "scoreGiven": out.total,
        "scoreMaximum": out.max_total,
        "comment": out.comment.replace("\n", " ").strip(),
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded" if approved else "PendingManual",
        "timestamp": _iso(out.approved_at) if approved and out.approved_at else _iso(datetime.now(UTC)),
        **out.stamp(),
    }


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection advice)."""
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def batch_csv(
    batch: BatchView, results: dict[str, MarkingResult], reviews: dict[str, ReviewPublic], ao_ids: list[str]
) -> str:
    """One row per item: ids, status, draft and approved marks per objective and in total, flags, reviewer, error."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "external_id",
            "status",
            "marking_id",
            "source",
            "total",
            "max_total",
            "draft_total",
            "approved_total",
            *[f"{a}_draft" for a in ao_ids],
            *[f"{a}_approved" for a in ao_ids],
            "flags",
            "approved_by",
            "approved_at",
            "error_code",
            "error_message",
        ]
    )
    for item in batch.items:
        result = results.get(item.marking_id or "")
        review = reviews.get(item.marking_id or "")
        draft = {m.ao_id: m.mark for m in result.ao_marks} if result else {}
        approved = {m.ao_id: m.mark for m in review.marks} if review else {}
        shown = released(result, review) if result else None
        row: list[object] = [
            item.external_id,
            item.status,
            item.marking_id or "",
            shown.source if shown else "",
            shown.total if shown else "",
            shown.max_total if shown else "",
            result.total if result else "",
            review.total if review else "",
            *[draft.get(a, "") for a in ao_ids],
            *[approved.get(a, "") for a in ao_ids],
            ";".join(f.code.value for f in result.flags) if result else "",
            review.reviewer if review else "",
            _iso(review.approved_at) if review else "",
            item.error_code or "",
            item.error_message or "",
        ]
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()
