"""Stored results in LMS shapes. Drafts never release themselves."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from schemas.result import MarkingResult
from service.api.store import BatchView


def _remark(result: MarkingResult, ao_id: str) -> str:
    ao = next(m for m in result.ao_marks if m.ao_id == ao_id)
    parts = [ao.rationale]
    if ao.strengths:
        parts.append("Strengths: " + "; ".join(ao.strengths))
    if ao.improvements:
        parts.append("Next steps: " + "; ".join(ao.improvements))
    return "\n".join(parts)


def moodle_marking_guide(result: MarkingResult) -> dict[str, Any]:
    """Moodle advanced grading (marking guide) data: criterion -> remark + score."""
    return {
        "grade": result.total,
        "advancedgradingdata": {
            "guide": {
                "criteria": [
                    {
                        "criterionshortname": ao.ao_id,
                        "criterionname": ao.ao_name,
                        "remark": _remark(result, ao.ao_id),
                        "remarkformat": 1,
                        "score": ao.mark,
                        "maxscore": ao.max_marks,
                    }
                    for ao in result.ao_marks
                ]
            }
        },
        "draft": True,
    }


def canvas_rubric_assessment(result: MarkingResult, criterion_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """Canvas submission update body: ``rubric_assessment[criterion_id] = {points, comments}``."""
    ids = criterion_ids or {}
    return {
        "rubric_assessment": {
            ids.get(ao.ao_id, ao.ao_id): {"points": ao.mark, "comments": _remark(result, ao.ao_id)}
            for ao in result.ao_marks
        },
        "comment": {"text_comment": f"{result.feedback.what_went_well}\n{result.feedback.even_better_if}"},
    }


def lti_ags_score(result: MarkingResult, user_id: str) -> dict[str, Any]:
    """An LTI 1.3 AGS Score; ``gradingProgress: PendingManual`` keeps the draft from releasing."""
    return {
        "userId": user_id,
        "scoreGiven": result.total,
        "scoreMaximum": result.max_total,
        "comment": f"{result.feedback.what_went_well} {result.feedback.even_better_if}".strip(),
        "activityProgress": "Completed",
        "gradingProgress": "PendingManual",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def batch_csv(batch: BatchView, results: dict[str, MarkingResult], ao_ids: list[str]) -> str:
    """One row per item: ids, status, total, per-AO marks, flags, and the error for failed items."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["external_id", "status", "marking_id", "total", "max_total", *ao_ids, "flags", "error_code", "error_message"]
    )
    for item in batch.items:
        result = results.get(item.marking_id or "")
        marks = {m.ao_id: m.mark for m in result.ao_marks} if result else {}
        writer.writerow(
            [
                item.external_id,
                item.status,
                item.marking_id or "",
                result.total if result else "",
                result.max_total if result else "",
                *[marks.get(a, "") for a in ao_ids],
                ";".join(f.code.value for f in result.flags) if result else "",
                item.error_code or "",
                item.error_message or "",
            ]
        )
    return out.getvalue()
