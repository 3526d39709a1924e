"""Exports: one marking in an LMS's shape (Moodle, Canvas, LTI), a batch as CSV."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from service.api.deps import LOCAL_PRINCIPAL, OwnedBatch, OwnedMarking, State
from service.errors import CallerError
from service.persistence.stores import StoredMarking
from service.workflows import exports

router = APIRouter(prefix="/v1", tags=["exports"])


async def _released(state: State, marking: StoredMarking) -> exports.Released:
    reviews = await asyncio.to_thread(state.store.latest_reviews, [marking.id])
    return exports.released(marking.result, reviews.get(marking.id), label=state.settings.student_label)


@router.get("/markings/{marking_id}/exports/moodle")
async def export_moodle(marking: OwnedMarking, state: State) -> dict[str, Any]:
    """Moodle marking-guide shape (criterion -> remark + score): the approved marks once reviewed."""
    return exports.moodle_marking_guide(await _released(state, marking))


@router.get("/markings/{marking_id}/exports/canvas")
async def export_canvas(
    marking: OwnedMarking,
    state: State,
    criterion: Annotated[list[str], Query(description="Map AO ids to Canvas criterion ids: AO1=_1234")] = [],  # noqa: B006
) -> dict[str, Any]:
    """Canvas ``rubric_assessment`` body: the approved marks once reviewed."""
    mapping: dict[str, str] = {}
    for pair in criterion:
        ao, sep, target = pair.partition("=")
        if not sep or not ao or not target:
            raise CallerError(f"criterion must look like AO1=_1234, got {pair!r}")
        mapping[ao] = target
    return exports.canvas_rubric_assessment(await _released(state, marking), mapping)


@router.get("/markings/{marking_id}/exports/lti-score")
async def export_lti(
    marking: OwnedMarking,
    state: State,
    user_id: Annotated[str, Query(min_length=1, max_length=200, description="The LTI user id (sub).")],
) -> dict[str, Any]:
    """LTI 1.3 AGS Score: FullyGraded once approved; a draft stays PendingManual (it never releases itself)."""
    return exports.lti_ags_score(await _released(state, marking), user_id)


@router.get("/batches/{batch_id}/export.csv", response_class=Response)
async def export_batch_csv(view: OwnedBatch, state: State) -> Response:
    """One CSV row per item, failed items included with their error."""
    ids = [i.marking_id for i in view.items if i.marking_id]
    results = await asyncio.to_thread(state.store.results_by_id, ids)
    reviews = await asyncio.to_thread(state.store.latest_reviews, ids)
    scheme = await asyncio.to_thread(
        state.store.get_scheme, view.scheme_id, view.scheme_version, owner=view.owner or LOCAL_PRINCIPAL
    )
    ao_ids = list(scheme.objective_ids) if scheme else []
    return Response(
        exports.batch_csv(view, results, reviews, ao_ids),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{view.id}.csv"'},
    )
