"""Batch webhooks: which finished batch owes a delivery, and how delivery went."""

from __future__ import annotations

from sqlalchemy import select, update

from service.persistence.db import BatchItemRow, BatchRow, utcnow
from service.persistence.stores.base import StoreBase


class WebhookStore(StoreBase):
    """Webhook delivery state of batches."""

    def finish_batch_if_complete(self, batch_id: str) -> str | None:
        """Mark a complete batch finished once; returns its webhook URL if this call should deliver it."""
        # Whether one item is still open, not how many: counting them made each item's finish read
        # every open item of its batch (quadratic over a batch). Asked first outside the write
        # transaction, so only the last items of a batch queue for SQLite's write lock; asked again
        # inside it, where the answer counts.
        open_items = (
            select(BatchItemRow.id)
            .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status.in_(("queued", "running")))
            .limit(1)
        )
        with self.session() as s:
            if s.scalar(open_items) is not None:
                return None
        with self._tx() as s:
            if s.scalar(open_items) is not None:
                return None
            claimed = s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.finished_at.is_(None))
                .values(finished_at=utcnow())
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            batch = s.get(BatchRow, batch_id)
            return batch.webhook_url if batch and batch.webhook_status in ("pending", "failed") else None

    def set_webhook_status(self, batch_id: str, status: str) -> None:
        """Record webhook delivery state."""
        with self._tx() as s:
            s.execute(update(BatchRow).where(BatchRow.id == batch_id).values(webhook_status=status))

    def pending_webhooks(self) -> list[tuple[str, str]]:
        """(batch id, URL) of finished batches whose webhook was never delivered (e.g. the process died)."""
        with self.session() as s:
            rows = s.execute(
                select(BatchRow.id, BatchRow.webhook_url).where(
                    BatchRow.finished_at.is_not(None), BatchRow.webhook_status == "pending"
                )
            )
            return [(batch_id, url) for batch_id, url in rows if url]
