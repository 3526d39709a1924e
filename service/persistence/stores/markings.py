"""Stored markings: a result with the essay it was given for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from schemas.result import MarkingResult
from service.errors import NotFoundError
from service.persistence.db import MarkingRow
from service.persistence.stores.base import StoreBase, new_id


@dataclass(frozen=True)
class StoredMarking:
    """A marking as read back."""

    id: str
    result: MarkingResult
    essay: str
    external_id: str | None
    batch_id: str | None
    owner: str | None = None


class MarkingStore(StoreBase):
    """Markings made one at a time (a batch item's marking is stored with its item, in the queue)."""

    def save_marking(
        self, result: MarkingResult, essay: str, *, owner: str | None, external_id: str | None = None
    ) -> str:
        """Store a result; returns its id."""
        marking_id = new_id("mk")
        with self._tx() as s:
            s.add(
                MarkingRow(
                    id=marking_id,
                    scheme_id=result.provenance.scheme_id,
                    scheme_version=result.provenance.scheme_version,
                    essay=essay,
                    result=result.model_dump_json(),
                    owner=owner,
                    external_id=external_id,
                )
            )
        return marking_id

    def results_by_id(self, marking_ids: list[str]) -> dict[str, MarkingResult]:
        """Stored results for many markings in one query."""
        if not marking_ids:
            return {}
        with self.session() as s:
            rows = s.execute(select(MarkingRow.id, MarkingRow.result).where(MarkingRow.id.in_(marking_ids)))
            return {row.id: MarkingResult.model_validate_json(row.result) for row in rows}

    def marking_ids_for(self, owner: str, external_id: str) -> list[str]:
        """The owner's markings of one student (``external_id``), oldest first."""
        with self.session() as s:
            query = (
                select(MarkingRow.id)
                .where(MarkingRow.owner == owner, MarkingRow.external_id == external_id)
                .order_by(MarkingRow.created_at)
            )
            return list(s.scalars(query))

    def get_marking(self, marking_id: str) -> StoredMarking:
        """A stored marking (``NotFoundError`` if absent)."""
        with self.session() as s:
            row = s.get(MarkingRow, marking_id)
        if row is None:
            raise NotFoundError(f"no marking with id {marking_id!r}")
        return StoredMarking(
            id=row.id,
            result=MarkingResult.model_validate_json(row.result),
            essay=row.essay,
            external_id=row.external_id,
            batch_id=row.batch_id,
            owner=row.owner,
        )
