"""GET /v1/batches and /v1/batches/{id}/marks: what the class view lists, without pasting batch ids.

The marks view carries each script's draft and approved mark per objective, so the page can show
where the teacher moved the model's draft (and by how many levels) without opening every script.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from service.api.deps import OwnedBatch, Principal, State
from service.persistence.db import BatchItemRow, BatchRow, ReviewRow
from service.persistence.stores import BatchView, Store

router = APIRouter(prefix="/v1/batches", tags=["batches"])


class BatchSummary(BaseModel):
    """One batch as the class view lists it."""

    id: str
    name: str | None = Field(default=None, description="The teacher's name for the class set, if given.")
    scheme_id: str
    scheme_version: str
    created_at: datetime
    status: str
    counts: dict[str, int] = Field(description="total, queued, running, done, failed and approved scripts.")


class ObjectiveMarks(BaseModel):
    """The model's draft and the teacher's approved mark (and levels) for one objective."""

    ao_id: str
    max_marks: int
    draft_mark: int
    draft_level: int
    approved_mark: int | None = None
    approved_level: int | None = None


class ScriptMarks(BaseModel):
    """One marked script of a batch."""

    external_id: str
    marking_id: str
    calibration: str = Field(description="calibrated | not_used | uncalibrated (the result's provenance).")
    reviewer: str | None = None
    objectives: list[ObjectiveMarks]


class BatchMarks(BaseModel):
    """Per-objective draft and approved marks for a batch's marked scripts (failed and queued ones omitted)."""

    id: str
    scheme_id: str
    scheme_version: str
    items: list[ScriptMarks]


def _owned_batches(store: Store, owner: str | None, limit: int) -> list[tuple[str, datetime]]:
    with store.session() as s:
        query = select(BatchRow.id, BatchRow.created_at).order_by(BatchRow.created_at.desc()).limit(limit)
        if owner is not None:
            query = query.where(BatchRow.owner == owner)
        return [(row.id, row.created_at) for row in s.execute(query)]


def _approved_counts(store: Store, batch_ids: list[str]) -> dict[str, int]:
    if not batch_ids:
        return {}
    with store.session() as s:
        rows = s.execute(
            select(BatchItemRow.batch_id, func.count(func.distinct(ReviewRow.marking_id)))
            .join(ReviewRow, ReviewRow.marking_id == BatchItemRow.marking_id)
            .where(BatchItemRow.batch_id.in_(batch_ids))
            .group_by(BatchItemRow.batch_id)
        )
        return {batch_id: count for batch_id, count in rows.all()}


def list_batches(store: Store, owner: str | None, limit: int) -> list[BatchSummary]:
    """The newest ``limit`` batches of ``owner`` (every batch when ``owner`` is None), newest first."""
    listed = _owned_batches(store, owner, limit)
    approved = _approved_counts(store, [batch_id for batch_id, _ in listed])
    summaries = []
    for batch_id, created_at in listed:
        view = store.get_batch(batch_id, with_items=False)
        summaries.append(
            BatchSummary(
                id=view.id,
                name=view.name,
                scheme_id=view.scheme_id,
                scheme_version=view.scheme_version,
                created_at=created_at,
                status=view.status,
                counts=view.counts | {"approved": approved.get(batch_id, 0)},
            )
        )
    return summaries


def batch_marks(store: Store, view: BatchView) -> BatchMarks:
    """Draft and approved marks per objective for the batch's marked scripts."""
    ids = [i.marking_id for i in view.items if i.marking_id]
    results = store.results_by_id(ids)
    reviews = store.latest_reviews(ids)
    items = []
    for item in view.items:
        if item.marking_id not in results:
            continue
        result, review = results[item.marking_id], reviews.get(item.marking_id)
        approved = {m.ao_id: m for m in review.marks} if review else {}
        items.append(
            ScriptMarks(
                external_id=item.external_id,
                marking_id=item.marking_id,
                calibration=result.provenance.calibration.status,
                reviewer=review.reviewer if review else None,
                objectives=[
                    ObjectiveMarks(
                        ao_id=m.ao_id,
                        max_marks=m.max_marks,
                        draft_mark=m.mark,
                        draft_level=m.level,
                        approved_mark=approved[m.ao_id].mark if m.ao_id in approved else None,
                        approved_level=approved[m.ao_id].level if m.ao_id in approved else None,
                    )
                    for m in result.ao_marks
                ],
            )
        )
    return BatchMarks(id=view.id, scheme_id=view.scheme_id, scheme_version=view.scheme_version, items=items)


@router.get("", response_model=list[BatchSummary])
async def get_batches(
    state: State, principal: Principal, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[BatchSummary]:
    """Your batches, newest first, with progress and how many scripts are approved."""
    owner = None if state.settings.auth_disabled else principal
    return await asyncio.to_thread(list_batches, state.store, owner, limit)


@router.get("/{batch_id}/marks", response_model=BatchMarks)
async def get_batch_marks(view: OwnedBatch, state: State) -> BatchMarks:
    """Each marked script's draft and approved mark per objective (the class view's moderation figures)."""
    return await asyncio.to_thread(batch_marks, state.store, view)
