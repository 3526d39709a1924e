"""Teacher reviews: approvals of a marking, history kept, the latest one counting."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.review import ReviewPublic
from service.persistence.db import MarkingRow, ReviewRow, utcnow
from service.persistence.stores.markings import MarkingStore, StoredMarking


def _public(row: ReviewRow) -> ReviewPublic:
    review = ReviewPublic.model_validate_json(row.body)
    return review.model_copy(update={"released_at": row.released_at, "released_by": row.released_by})


class ReviewStore(MarkingStore):
    """Reviews, and the reviewed markings they belong to."""

    def save_review(self, review: ReviewPublic, *, also: Callable[[Session], object] | None = None) -> None:
        """Store a teacher's approval (history is kept; the latest one counts).

        ``also`` writes in the same transaction (the exemplar the approval makes): both are stored or neither.
        """
        with self._tx() as s:
            if also is not None:
                also(s)
            s.add(
                ReviewRow(
                    marking_id=review.marking_id,
                    reviewer=review.reviewer,
                    body=review.model_dump_json(),
                    approved_at=review.approved_at,
                )
            )

    def latest_reviews(self, marking_ids: list[str]) -> dict[str, ReviewPublic]:
        """The latest review of each given marking that has one."""
        if not marking_ids:
            return {}
        with self.session() as s:
            rows = s.scalars(select(ReviewRow).where(ReviewRow.marking_id.in_(marking_ids)).order_by(ReviewRow.id))
            return {r.marking_id: _public(r) for r in rows}

    def release(self, marking_ids: list[str], by: str) -> tuple[list[str], list[str]]:
        """Release the latest approval of each marking to its student: (released now or before, not approved)."""
        released, unapproved = [], []
        with self._tx() as s:
            for marking_id in marking_ids:
                row = s.scalars(
                    select(ReviewRow).where(ReviewRow.marking_id == marking_id).order_by(ReviewRow.id.desc()).limit(1)
                ).first()
                if row is None:
                    unapproved.append(marking_id)
                    continue
                if row.released_at is None:
                    row.released_at, row.released_by = utcnow(), by
                released.append(marking_id)
        return released, unapproved

    def withdraw_release(self, marking_id: str) -> bool:
        """Take back the release of the latest approval; whether it was released."""
        with self._tx() as s:
            row = s.scalars(
                select(ReviewRow).where(ReviewRow.marking_id == marking_id).order_by(ReviewRow.id.desc()).limit(1)
            ).first()
            if row is None or row.released_at is None:
                return False
            row.released_at = row.released_by = None
            return True

    def reviewed_markings(self, owner: str | None, scheme_id: str | None) -> list[tuple[StoredMarking, ReviewPublic]]:
        """Approved markings (latest review each), optionally for one scheme, oldest first."""
        with self.session() as s:
            query = select(MarkingRow.id).join(ReviewRow, ReviewRow.marking_id == MarkingRow.id).distinct()
            if owner is not None:
                query = query.where(MarkingRow.owner == owner)
            if scheme_id is not None:
                query = query.where(MarkingRow.scheme_id == scheme_id)
            ids = sorted(s.scalars(query))
        reviews = self.latest_reviews(ids)
        return [(self.get_marking(i), reviews[i]) for i in ids]
