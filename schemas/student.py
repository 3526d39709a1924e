"""What a student receives: one definition for the sheet, the preview and every export."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class StudentMark(BaseModel):
    """One objective as the student sees it."""

    ao_id: str
    ao_name: str
    level: int
    mark: int
    max_marks: int
    comment: str = Field(description="The teacher's comment, or the draft's rationale where the draft mark was kept.")


class StudentView(BaseModel):
    """Exactly what leaves draftmark for a student: the approved marks and text, or the draft (``source``)."""

    source: Literal["approved", "draft"]
    marks: list[StudentMark]
    total: int
    max_total: int
    what_went_well: str
    even_better_if: str
    teacher_note: str = Field(description="The teacher's overall comment.")
    label: str = Field(description="How the feedback was made, for the student (DRAFTMARK_STUDENT_LABEL).")
    approved_by: str | None = None
    approved_at: datetime | None = None
    released_at: datetime | None = None
    """When the teacher released it to the student; only released work reaches students and LMSs."""

    @property
    def released(self) -> bool:
        """Approved and released by the teacher (what may leave as a grade)."""
        return self.source == "approved" and self.released_at is not None

    def comment(self) -> str:
        """The overall comment as one text (LMS comments, exports): feedback, the teacher's note, the label."""
        parts = [
            f"What went well: {self.what_went_well}" if self.what_went_well else "",
            f"Even better if: {self.even_better_if}" if self.even_better_if else "",
            self.teacher_note,
            self.label,
        ]
        return "\n".join(p for p in parts if p.strip())
