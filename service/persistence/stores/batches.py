"""Batches: creating one, its progress, and a retry of its failed items."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from schemas.class_set import SKIPPED_FILES, SkippedFile
from schemas.scheme import MarkScheme
from service.errors import CallerError, ConflictError, NotFoundError
from service.persistence.db import BatchItemRow, BatchRow, MarkingRow, as_utc, utcnow
from service.persistence.stores.base import StoreBase, new_id


@dataclass(frozen=True)
class ItemView:
    """A batch item's public state."""

    external_id: str
    status: str
    marking_id: str | None
    error_code: str | None
    error_message: str | None
    retryable: bool | None
    attempts: int


@dataclass(frozen=True)
class BatchView:
    """A batch with its progress."""

    id: str
    scheme_id: str
    scheme_version: str
    status: str
    counts: dict[str, int]
    webhook_status: str
    items: list[ItemView]
    owner: str | None = None
    name: str | None = None
    created_at: datetime | None = None
    skipped: tuple[SkippedFile, ...] = ()
    """Files sent with the set that held no essay (kept after the teacher dismisses them)."""
    skipped_dismissed_at: datetime | None = None


class BatchStore(StoreBase):
    """Batches as their callers see them."""

    def create_batch(
        self,
        scheme: MarkScheme,
        essays: list[tuple[str, str]],
        *,
        samples: int,
        webhook_url: str | None,
        owner: str | None,
        name: str | None = None,
        skipped: list[SkippedFile] | None = None,
    ) -> str:
        """Queue a batch of (external id, essay) pairs, with its name and the files it could not use."""
        batch_id = new_id("bt")
        with self._tx() as s:
            s.add(
                BatchRow(
                    id=batch_id,
                    scheme_id=scheme.id,
                    scheme_version=scheme.version,
                    samples=samples,
                    webhook_url=webhook_url,
                    webhook_status="pending" if webhook_url else "none",
                    owner=owner,
                    name=name,
                    skipped=SKIPPED_FILES.dump_json(skipped).decode() if skipped else None,
                )
            )
            s.flush()
            s.add_all(
                BatchItemRow(batch_id=batch_id, position=i, external_id=ext, essay=essay)
                for i, (ext, essay) in enumerate(essays)
            )
        return batch_id

    def rename_items(self, batch_id: str, renames: dict[str, str]) -> None:
        """Give a finished class set's scripts new ids (e.g. the LMS's user ids), on the items and their markings."""
        with self._tx() as s:
            batch = s.get(BatchRow, batch_id)
            if batch is None:
                raise NotFoundError(f"no batch with id {batch_id!r}")
            items = {i.external_id: i for i in s.scalars(select(BatchItemRow).where(BatchItemRow.batch_id == batch_id))}
            if any(i.status in ("queued", "running") for i in items.values()):
                raise ConflictError("scripts are still being marked: rename them once the class set has finished")
            unknown = sorted(set(renames) - set(items))
            if unknown:
                raise CallerError(f"not in this class set: {', '.join(unknown[:5])}")
            kept = set(items) - set(renames)
            targets = list(renames.values())
            clash = sorted({t for t in targets if t in kept} | {t for t in targets if targets.count(t) > 1})
            if clash:
                raise ConflictError(f"two scripts would share the id {clash[0]!r}")
            markings = {
                m.id: m
                for m in s.scalars(
                    select(MarkingRow).where(
                        MarkingRow.id.in_([items[o].marking_id for o in renames if items[o].marking_id])
                    )
                )
            }
            for old in renames:  # free the old ids first (unique per class set): renames may swap two
                item = items[old]
                item.external_id = f"\u2063renaming-{item.id}"
                if item.marking_id in markings:
                    markings[item.marking_id].external_id = item.external_id
            s.flush()
            for old, new in renames.items():
                item = items[old]
                item.external_id = new
                if item.marking_id in markings:
                    markings[item.marking_id].external_id = new

    def get_batch(self, batch_id: str, *, with_items: bool = True) -> BatchView:
        """A batch's progress (``NotFoundError`` if absent)."""
        with self.session() as s:
            batch = s.get(BatchRow, batch_id)
            if batch is None:
                raise NotFoundError(f"no batch with id {batch_id!r}")
            if with_items:
                rows = s.execute(
                    select(
                        BatchItemRow.external_id,
                        BatchItemRow.status,
                        BatchItemRow.marking_id,
                        BatchItemRow.error_code,
                        BatchItemRow.error_message,
                        BatchItemRow.retryable,
                        BatchItemRow.attempts,
                    )
                    .where(BatchItemRow.batch_id == batch_id)
                    .order_by(BatchItemRow.position)
                )
                items = [ItemView(*r) for r in rows]
                counts = Counter(i.status for i in items)
            else:
                items = []
                counts = Counter(
                    dict(
                        s.execute(
                            select(BatchItemRow.status, func.count())
                            .where(BatchItemRow.batch_id == batch_id)
                            .group_by(BatchItemRow.status)
                        ).all()
                    )
                )
        full = {k: counts.get(k, 0) for k in ("queued", "running", "done", "failed")}
        status = (
            "done"
            if full["queued"] == full["running"] == 0
            else ("running" if full["done"] + full["failed"] + full["running"] else "queued")
        )
        if status == "done" and full["failed"]:
            status = "done_with_failures"
        return BatchView(
            id=batch.id,
            scheme_id=batch.scheme_id,
            scheme_version=batch.scheme_version,
            status=status,
            counts=full | {"total": sum(full.values())},
            webhook_status=batch.webhook_status,
            items=items if with_items else [],
            owner=batch.owner,
            name=batch.name,
            created_at=as_utc(batch.created_at),
            skipped=tuple(SKIPPED_FILES.validate_json(batch.skipped)) if batch.skipped else (),
            skipped_dismissed_at=as_utc(batch.skipped_dismissed_at) if batch.skipped_dismissed_at else None,
        )

    def dismiss_skipped(self, batch_id: str) -> None:
        """The teacher has read the set's skipped files: stop showing them (the list and its count are kept)."""
        with self._tx() as s:
            batch = s.get(BatchRow, batch_id)
            if batch is None:
                raise NotFoundError(f"no batch with id {batch_id!r}")
            if batch.skipped_dismissed_at is None:
                batch.skipped_dismissed_at = utcnow()

    def retry_failed(self, batch_id: str) -> int:
        """Re-queue a batch's retryable failed items (each gets a fresh round of tries)."""
        self.get_batch(batch_id, with_items=False)
        with self._tx() as s:
            result = s.execute(
                update(BatchItemRow)
                .where(
                    BatchItemRow.batch_id == batch_id, BatchItemRow.status == "failed", BatchItemRow.retryable.is_(True)
                )
                .values(
                    status="queued",
                    error_code=None,
                    error_message=None,
                    tries=0,
                    not_before=None,
                    published_at=None,
                    updated_at=utcnow(),
                )
            )
            if result.rowcount:  # type: ignore[attr-defined]
                s.execute(update(BatchRow).where(BatchRow.id == batch_id).values(finished_at=None))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def item_counts(self) -> dict[str, int]:
        """Batch items in each state, over all batches."""
        with self.session() as s:
            rows = s.execute(select(BatchItemRow.status, func.count()).group_by(BatchItemRow.status)).all()
        found = {str(status): int(n) for status, n in rows}
        return {k: found.get(k, 0) for k in ("queued", "running", "done", "failed")}

    def batch_owner(self, batch_id: str) -> str | None:
        """Who created the batch."""
        with self.session() as s:
            batch = s.get(BatchRow, batch_id)
            return batch.owner if batch else None
