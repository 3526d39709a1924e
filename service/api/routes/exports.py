"""Exports: a script or a class set in the shapes Canvas, Moodle and LTI platforms accept; the class report CSV.

Each JSON export is ``{"draftmark": metadata, "payload": the platform's body}``; the CSVs are the
platforms' import files. Unapproved scripts are refused (409) unless ``released_only=true`` leaves
them out or ``include=drafts`` holds them back where the platform can (Moodle, LTI).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from service.api.deps import LOCAL_PRINCIPAL, OwnedBatch, OwnedMarking, State
from service.api.lms_params import (
    Criteria,
    Include,
    ReleasedOnly,
    Rubric,
    Users,
    Workflow,
    canvas_criteria,
    class_selection,
    draft_policy,
)
from service.lms import canvas, moodle
from service.lms.common import MappingError, parse_criteria
from service.persistence.stores import StoredMarking
from service.workflows import exports
from service.workflows.exports import DraftPolicy, Platform, Selection

router = APIRouter(prefix="/v1", tags=["exports"])


async def _one(
    state: State, marking: StoredMarking, user_id: str | None, policy: DraftPolicy, platform: Platform
) -> Selection:
    reviews = await asyncio.to_thread(state.store.latest_reviews, [marking.id])
    key = user_id or marking.external_id or marking.id
    script = exports.script_for(
        marking.id, marking.result, reviews.get(marking.id), key=key, label=state.settings.student_label
    )
    if policy == "released_only":
        raise MappingError("released_only is for class sets; for one script it is the default (drafts are refused)")
    return exports.apply_policy(Selection([script]), policy, platform=platform)


UserId = Annotated[
    str | None, Query(min_length=1, max_length=200, description="The LMS user id (default: the external id)")
]


@router.get("/markings/{marking_id}/exports/canvas")
async def export_canvas(
    marking: OwnedMarking,
    state: State,
    criterion: Criteria = [],  # noqa: B006
    rubric: Rubric = True,
    user_id: UserId = None,
) -> dict[str, Any]:
    """Canvas Submissions API body (``PUT .../submissions/:user_id``) for one approved script."""
    criteria = canvas_criteria(criterion, rubric)
    return exports.canvas_export(await _one(state, marking, user_id, "refuse", "canvas"), criteria, bulk=False)


@router.get("/markings/{marking_id}/exports/moodle")
async def export_moodle(
    marking: OwnedMarking,
    state: State,
    assignment_id: Annotated[int, Query(ge=1, description="The Moodle assignment instance id")],
    user_id: UserId = None,
    criterion: Criteria = [],  # noqa: B006
    include: Include = None,
    workflow: Workflow = "released",
) -> dict[str, Any]:
    """``mod_assign_save_grades`` parameters for one script (marking guide fillings with ``criterion=``)."""
    criteria = parse_criteria(criterion, integer_ids=True) if criterion else None
    selection = await _one(state, marking, user_id, draft_policy(include, False), "moodle")
    return exports.moodle_export(selection, assignment_id=assignment_id, criteria=criteria, released_state=workflow)


@router.get("/markings/{marking_id}/exports/lti-score")
async def export_lti(
    marking: OwnedMarking,
    state: State,
    user_id: Annotated[str, Query(min_length=1, max_length=200, description="The LTI user id (sub).")],
    include: Include = None,
) -> dict[str, Any]:
    """LTI 1.3 AGS Score: ``FullyGraded`` with the approved score; a draft only with include=drafts, unscored."""
    return exports.lti_export(await _one(state, marking, user_id, draft_policy(include, False), "lti"))


@router.get("/batches/{batch_id}/exports/canvas")
async def export_class_canvas(
    view: OwnedBatch,
    state: State,
    criterion: Criteria = [],  # noqa: B006
    rubric: Rubric = True,
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
) -> dict[str, Any]:
    """Canvas bulk body for the class (``POST .../submissions/update_grades``, ``grade_data[<user id>]``)."""
    criteria = canvas_criteria(criterion, rubric)
    selection = await class_selection(state, view, user, draft_policy(None, released_only), "canvas")
    return exports.canvas_export(selection, criteria, bulk=True)


@router.get("/batches/{batch_id}/exports/canvas.csv", response_class=Response)
async def export_class_canvas_csv(
    view: OwnedBatch,
    state: State,
    assignment_id: Annotated[str, Query(min_length=1, max_length=20, description="The Canvas assignment id")],
    assignment: Annotated[str, Query(max_length=200, description="The assignment's title in Canvas")] = "",
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
) -> Response:
    """The Canvas gradebook import file for the class (``Student,ID,SIS User ID,SIS Login ID,Section,Title (id)``)."""
    selection = await class_selection(state, view, user, draft_policy(None, released_only), "canvas")
    body = canvas.gradebook_csv(selection.scripts, assignment=assignment, assignment_id=assignment_id)
    return _csv(body, f"{view.id}-canvas.csv")


@router.get("/batches/{batch_id}/exports/moodle")
async def export_class_moodle(
    view: OwnedBatch,
    state: State,
    assignment_id: Annotated[int, Query(ge=1, description="The Moodle assignment instance id")],
    criterion: Criteria = [],  # noqa: B006
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
    include: Include = None,
    workflow: Workflow = "released",
) -> dict[str, Any]:
    """``mod_assign_save_grades`` parameters for the class."""
    criteria = parse_criteria(criterion, integer_ids=True) if criterion else None
    selection = await class_selection(state, view, user, draft_policy(include, released_only), "moodle")
    return exports.moodle_export(selection, assignment_id=assignment_id, criteria=criteria, released_state=workflow)


@router.get("/batches/{batch_id}/exports/moodle.csv", response_class=Response)
async def export_class_moodle_csv(
    view: OwnedBatch,
    state: State,
    identifier: Annotated[moodle.Identifier, Query(description="What the first column holds")] = "username",
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
) -> Response:
    """The Moodle gradebook import file: ``<identifier>,grade,feedback`` (approved scripts only)."""
    selection = await class_selection(state, view, user, draft_policy(None, released_only), "moodle")
    return _csv(moodle.gradebook_csv(selection.scripts, identifier=identifier), f"{view.id}-moodle.csv")


@router.get("/batches/{batch_id}/exports/lti-scores")
async def export_class_lti(
    view: OwnedBatch,
    state: State,
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
    include: Include = None,
) -> dict[str, Any]:
    """One AGS Score per script of the class (what "send to the LMS" posts)."""
    return exports.lti_export(await class_selection(state, view, user, draft_policy(include, released_only), "lti"))


def _csv(body: str, filename: str) -> Response:
    return Response(body, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/batches/{batch_id}/export.csv", response_class=Response)
async def export_batch_csv(view: OwnedBatch, state: State) -> Response:
    """The class report (draftmark's own): one row per item, draft and approved marks, failed items with their error."""
    ids = [i.marking_id for i in view.items if i.marking_id]
    results = await asyncio.to_thread(state.store.results_by_id, ids)
    reviews = await asyncio.to_thread(state.store.latest_reviews, ids)
    scheme = await asyncio.to_thread(
        state.store.get_scheme, view.scheme_id, view.scheme_version, owner=view.owner or LOCAL_PRINCIPAL
    )
    ao_ids = list(scheme.objective_ids) if scheme else []
    return _csv(
        exports.report_csv(view, results, reviews, ao_ids, label=state.settings.student_label), f"{view.id}.csv"
    )
