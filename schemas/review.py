"""A teacher's review of a marking: the approved marks beside the model's draft (stored as it is)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas.calibration import Basis

ReviewMode = Literal["anchored", "blind"]
"""How the marks were given: before the draft was shown (blind) or with it in view (anchored)."""


class ReviewedMark(BaseModel):
    """A teacher's mark for one objective, with its level recomputed from the scheme."""

    ao_id: str
    mark: int
    level: int
    draft_mark: int
    comment: str = ""


class ReviewPublic(BaseModel):
    """A stored review."""

    marking_id: str
    reviewer: str
    approved_at: datetime
    marks: list[ReviewedMark]
    total: int
    draft_total: int
    max_total: int
    overall_comment: str
    mode: ReviewMode = "anchored"
    what_went_well: str | None = None
    """What the student is told went well (the draft's unless the teacher edited it; None: approved before
    this was editable, so the draft's)."""
    even_better_if: str | None = None
    """The student's next step, likewise."""
    released_at: datetime | None = None
    """When the teacher released this approval to the student (None: approved, not released). A new
    approval is not released until released again."""
    released_by: str | None = None

    @property
    def basis(self) -> Basis:
        """How calibration treats these marks (see ``schemas.calibration.Basis``)."""
        if self.mode == "blind":
            return "blind"
        return "unchanged_draft" if all(m.mark == m.draft_mark for m in self.marks) else "anchored"
