"""/v1/markings/{id}/review and /v1/reviews: a teacher's approval, and approved scripts as an eval set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from schemas.marked import EvalItem
from service.api.deps import LOCAL_PRINCIPAL, OwnedMarking, Principal, State
from service.errors import ConflictError, NotFoundError
from service.persistence.exemplars import ExemplarStore
from service.workflows.review import ReviewCreate, ReviewPublic, build_review, exemplar_from_review

router = APIRouter(prefix="/v1", tags=["review"])


@router.post("/markings/{marking_id}/review", status_code=201, response_model=ReviewPublic)
async def approve_marking(
    marking: OwnedMarking, body: ReviewCreate, state: State, principal: Principal
) -> ReviewPublic:
    """Approve a draft with the teacher's final marks; the model's draft is kept beside them."""
    provenance = marking.result.provenance
    scheme = await asyncio.to_thread(
        state.store.get_scheme,
        provenance.scheme_id,
        provenance.scheme_version,
        owner=marking.owner or LOCAL_PRINCIPAL,  # the scheme it was marked with, whoever approves it
    )
    if scheme is None:
        raise NotFoundError(f"scheme {provenance.scheme_id}@{provenance.scheme_version} is no longer registered")
    review = build_review(marking.id, body, marking.result, scheme, datetime.now(UTC))
    exemplar = exemplar_from_review(principal, marking, review, scheme)
    await asyncio.to_thread(state.store.save_review, review, also=exemplar)
    # Refit in the background, and only when calibration can start or REFIT_EVERY new counted scripts came
    # in: approving never waits for a fit, and marks do not shift script by script during a sitting.
    if await asyncio.to_thread(ExemplarStore(state.store).refit_due, principal, scheme.id, scheme.version):
        state.refits.request(state.store, principal, scheme)
    return review


@router.post("/markings/{marking_id}/release", response_model=ReviewPublic)
async def release_marking(marking: OwnedMarking, state: State, principal: Principal) -> ReviewPublic:
    """Release the approved marks and feedback to the student (LMS pushes and learner views carry only these)."""
    released, _ = await asyncio.to_thread(state.store.release, [marking.id], principal)
    if not released:
        raise ConflictError("this script is not approved yet: approve it, then release it")
    return (await asyncio.to_thread(state.store.latest_reviews, [marking.id]))[marking.id]


@router.delete("/markings/{marking_id}/release", status_code=204, response_class=Response)
async def withdraw_release(marking: OwnedMarking, state: State) -> Response:
    """Take a release back (what was already sent to an LMS stays there)."""
    if not await asyncio.to_thread(state.store.withdraw_release, marking.id):
        raise ConflictError("this script's approval is not released")
    return Response(status_code=204)


@router.get("/reviews/export.jsonl", response_class=Response)
async def export_reviews(state: State, principal: Principal, scheme_id: str | None = None) -> Response:
    """Approved scripts as an eval dataset (JSONL): the teacher's marks are the human marks."""
    owner = None if state.settings.auth_disabled else principal
    pairs = await asyncio.to_thread(state.store.reviewed_markings, owner, scheme_id)
    items = [
        EvalItem(
            id=marking.external_id or marking.id,
            essay=marking.essay,
            scheme_id=marking.result.provenance.scheme_id,
            human={m.ao_id: m.mark for m in review.marks},
            metadata={
                "marker": review.reviewer,
                "approved_at": review.approved_at.isoformat(),
                "marking_id": marking.id,
                "model": marking.result.provenance.model,
                "draft_total": review.draft_total,
            },
        )
        for marking, review in pairs
    ]
    return Response(
        "".join(item.model_dump_json() + "\n" for item in items),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="approved.jsonl"'},
    )
