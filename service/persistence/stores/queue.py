"""The batch queue: leases held by the workers, and the broker outbox in Celery mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.result import MarkingResult
from service.persistence.db import BatchItemRow, BatchRow, MarkingRow, utcnow
from service.persistence.stores.base import StoreBase, new_id


@dataclass(frozen=True)
class ClaimedItem:
    """Work a batch worker has claimed."""

    id: int
    batch_id: str
    external_id: str
    essay: str
    scheme_id: str
    scheme_version: str
    samples: int
    attempts: int
    owner: str | None = None
    claimer: str = ""
    """Who holds the lease."""
    tries: int = 1
    """Attempts in the current round (``attempts`` counts all of them)."""


class QueueStore(StoreBase):
    """Claiming, renewing and finishing batch items.

    A worker claims an item by setting claimed_by and a lease expiry; it renews the lease while
    marking. Only the lease holder may record the outcome. An item whose lease has expired (its
    worker died, or lost the database for longer than the lease) may be claimed by anyone, so a
    process starting up never touches items other live processes are marking.
    """

    @staticmethod
    def _claimable(now: datetime) -> ColumnElement[bool]:
        return or_(
            and_(
                BatchItemRow.status == "queued",
                or_(BatchItemRow.not_before.is_(None), BatchItemRow.not_before <= now),
            ),
            and_(BatchItemRow.status == "running", BatchItemRow.lease_expires_at < now),
        )

    def claim_item(self, claimer: str, *, lease_s: float, item_id: int | None = None) -> ClaimedItem | None:
        """Lease one claimable item (the given one, or the oldest) to ``claimer``; None if there is none.

        Claimable: queued and past its backoff, or running under an expired lease.
        """
        while True:
            now = utcnow()
            with self._tx() as s:
                if item_id is None:
                    candidate = s.scalar(
                        select(BatchItemRow.id).where(self._claimable(now)).order_by(BatchItemRow.id).limit(1)
                    )
                    if candidate is None:
                        return None
                else:
                    candidate = item_id
                claimed = s.execute(
                    update(BatchItemRow)
                    .where(BatchItemRow.id == candidate, self._claimable(now))
                    .values(
                        status="running",
                        claimed_by=claimer,
                        lease_expires_at=now + timedelta(seconds=lease_s),
                        not_before=None,
                        attempts=BatchItemRow.attempts + 1,
                        tries=BatchItemRow.tries + 1,
                        updated_at=now,
                    )
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    if item_id is not None:
                        return None  # done, failed, not yet due, or leased to a live worker
                    continue  # another worker (or process) took it
                row = s.execute(
                    select(
                        BatchItemRow.batch_id,
                        BatchItemRow.external_id,
                        BatchItemRow.essay,
                        BatchItemRow.attempts,
                        BatchItemRow.tries,
                        BatchRow.scheme_id,
                        BatchRow.scheme_version,
                        BatchRow.samples,
                        BatchRow.owner,
                    )
                    .join(BatchRow, BatchRow.id == BatchItemRow.batch_id)
                    .where(BatchItemRow.id == candidate)
                ).one()
                return ClaimedItem(
                    id=candidate,
                    batch_id=row.batch_id,
                    external_id=row.external_id,
                    essay=row.essay,
                    scheme_id=row.scheme_id,
                    scheme_version=row.scheme_version,
                    samples=row.samples,
                    attempts=row.attempts,
                    owner=row.owner,
                    claimer=claimer,
                    tries=row.tries,
                )

    def item_state(self, item_id: int) -> tuple[str, datetime | None, datetime | None] | None:
        """(status, lease expiry, backoff end) of an item, or None if it does not exist."""
        with self.session() as s:
            row = s.execute(
                select(BatchItemRow.status, BatchItemRow.lease_expires_at, BatchItemRow.not_before).where(
                    BatchItemRow.id == item_id
                )
            ).one_or_none()
        return None if row is None else (row.status, row.lease_expires_at, row.not_before)

    def _held(self, item: ClaimedItem) -> ColumnElement[bool]:
        return and_(
            BatchItemRow.id == item.id, BatchItemRow.status == "running", BatchItemRow.claimed_by == item.claimer
        )

    def _let_go(self, s: Session, item: ClaimedItem, **values: Any) -> bool:
        """End this worker's lease on ``item`` with ``values``, in ``s``; False if the item is no longer ours."""
        ended = s.execute(
            update(BatchItemRow)
            .where(self._held(item))
            .values(claimed_by=None, lease_expires_at=None, updated_at=utcnow(), **values)
        )
        return bool(ended.rowcount == 1)  # type: ignore[attr-defined]

    def renew_lease(self, item: ClaimedItem, *, lease_s: float) -> bool:
        """Extend the lease; False if it is no longer ours (it expired and was taken over)."""
        now = utcnow()
        with self._tx() as s:
            renewed = s.execute(
                update(BatchItemRow).where(self._held(item)).values(lease_expires_at=now + timedelta(seconds=lease_s))
            )
            return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]

    def complete_item(self, item: ClaimedItem, result: MarkingResult, *, owner: str | None) -> str | None:
        """Store the result and mark the item done in one transaction; None if it was not ours.

        The unique index on markings (batch_id, external_id) makes a second result for the same
        item impossible, whatever a broker redelivers or a lease race allows.
        """
        marking_id = new_id("mk")
        try:
            with self._tx() as s:
                done = self._let_go(
                    s, item, status="done", marking_id=marking_id, error_code=None, error_message=None, retryable=None
                )
                if not done:
                    s.rollback()
                    return None
                s.add(
                    MarkingRow(
                        id=marking_id,
                        scheme_id=item.scheme_id,
                        scheme_version=item.scheme_version,
                        essay=item.essay,
                        result=result.model_dump_json(),
                        external_id=item.external_id,
                        batch_id=item.batch_id,
                        owner=owner,
                    )
                )
        except IntegrityError:
            return None  # a result for this item is already stored
        return marking_id

    def fail_item(self, item: ClaimedItem, *, code: str, message: str, retryable: bool) -> bool:
        """Record a final failure (never a score); False if the item was not ours."""
        with self._tx() as s:
            return self._let_go(s, item, status="failed", error_code=code, error_message=message, retryable=retryable)

    def defer_item(self, item: ClaimedItem, *, delay_s: float, code: str, message: str) -> bool:
        """Back to the queue after a retryable error, not to be claimed for ``delay_s``."""
        with self._tx() as s:
            return self._let_go(
                s,
                item,
                status="queued",
                error_code=code,
                error_message=message,
                retryable=True,
                not_before=utcnow() + timedelta(seconds=delay_s),
            )

    def release_item(self, item: ClaimedItem) -> bool:
        """Give an unfinished item back at shutdown (the try does not count)."""
        with self._tx() as s:
            return self._let_go(
                s,
                item,
                status="queued",
                attempts=BatchItemRow.attempts - 1,
                tries=BatchItemRow.tries - 1,
                published_at=None,
            )

    # Batch queue: broker outbox (Celery mode) --------------------------------------------------
    def take_unpublished(self, limit: int = 500) -> list[int]:
        """Mark up to ``limit`` queued items that have no task at the broker as published; their ids.

        The conditional update makes each item's first publication happen in one process only.
        """
        with self._tx() as s:
            ids = list(
                s.scalars(
                    select(BatchItemRow.id)
                    .where(BatchItemRow.status == "queued", BatchItemRow.published_at.is_(None))
                    .order_by(BatchItemRow.id)
                    .limit(limit)
                )
            )
            if not ids:
                return []
            taken = s.scalars(
                update(BatchItemRow)
                .where(BatchItemRow.id.in_(ids), BatchItemRow.published_at.is_(None))
                .values(published_at=utcnow())
                .returning(BatchItemRow.id)
            )
            return sorted(taken)

    def unpublish(self, item_ids: list[int]) -> None:
        """The broker refused these: publish them again later."""
        if item_ids:
            with self._tx() as s:
                s.execute(update(BatchItemRow).where(BatchItemRow.id.in_(item_ids)).values(published_at=None))

    def expired_leases(self, limit: int = 500) -> list[int]:
        """Running items whose lease has expired: their worker died, and they need a new task."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(BatchItemRow.id)
                    .where(BatchItemRow.status == "running", BatchItemRow.lease_expires_at < utcnow())
                    .order_by(BatchItemRow.id)
                    .limit(limit)
                )
            )

    def queued_published_before(self, cutoff: datetime, limit: int = 500) -> list[int]:
        """Queued items untouched since before ``cutoff`` and due (candidates when the broker lost its queue)."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(BatchItemRow.id)
                    .where(
                        BatchItemRow.status == "queued",
                        BatchItemRow.published_at < cutoff,
                        BatchItemRow.updated_at < cutoff,
                        or_(BatchItemRow.not_before.is_(None), BatchItemRow.not_before < cutoff),
                    )
                    .order_by(BatchItemRow.id)
                    .limit(limit)
                )
            )
