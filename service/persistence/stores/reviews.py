"""Teacher reviews: approvals of a marking, history kept, the latest one counting."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.review import ReviewPublic
from service.persistence.db import MarkingRow, ReviewRow
from service.persistence.stores.markings import MarkingStore, StoredMarking


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
            return {r.marking_id: ReviewPublic.model_validate_json(r.body) for r in rows}

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
