"""Direct pushes: an owner's own Canvas or Moodle token, and a class's approved grades sent with it (or a dry run)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from service.api.deps import OwnedBatch, Principal, State
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
from service.errors import NotFoundError
from service.lms import requests
from service.lms.common import parse_criteria
from service.lti.http import shared_client
from service.workflows import exports, lms_push

router = APIRouter(prefix="/v1", tags=["lms"])
Kind = Literal["canvas", "moodle"]


class ConnectionIn(BaseModel):
    """An LMS API token: a Canvas access token, or a Moodle web-service token for mod_assign_save_grades."""

    base_url: str = Field(min_length=8, max_length=1000, description="e.g. https://canvas.example.edu")
    token: str = Field(min_length=1, max_length=4000, repr=False)


class ConnectionPublic(BaseModel):
    """A stored connection (the token is never returned)."""

    kind: str
    base_url: str


@router.put("/lms/connections/{kind}", status_code=204, response_class=Response)
async def connect(kind: Kind, body: ConnectionIn, state: State, principal: Principal) -> Response:
    """Store your token for Canvas or Moodle (encrypted at rest, never returned or logged)."""
    await asyncio.to_thread(
        lms_push.connect,
        state.store,
        principal,
        kind,
        base_url=body.base_url,
        token=body.token,
        allow_private=state.settings.lti_allow_private,
    )
    return Response(status_code=204)


@router.get("/lms/connections")
async def list_connections(state: State, principal: Principal) -> list[ConnectionPublic]:
    """Your stored LMS connections."""
    found = await asyncio.to_thread(state.store.connections, principal)
    return [ConnectionPublic(kind=k, base_url=u) for k, u in found]


@router.delete("/lms/connections/{kind}", status_code=204, response_class=Response)
async def disconnect(kind: Kind, state: State, principal: Principal) -> Response:
    """Forget your token for Canvas or Moodle."""
    if not await asyncio.to_thread(state.store.delete_connection, principal, kind):
        raise NotFoundError(f"no {kind} connection")
    return Response(status_code=204)


DryRun = Annotated[bool, Query(description="Return the exact request (token redacted) without sending it")]


async def _push(state: State, kind: Kind, request: requests.LmsRequest, wrapped: dict[str, Any], dry_run: bool) -> Any:
    out: dict[str, Any] = {"dry_run": dry_run, "request": request.shown(), "draftmark": wrapped["draftmark"]}
    if dry_run:
        return out
    http = shared_client(allow_private=state.settings.lti_allow_private)[0]
    pushed = await asyncio.to_thread(lms_push.send, http, request, kind)
    return out | {"status": pushed.status, "answer": pushed.answer}


@router.post("/batches/{batch_id}/push/canvas")
async def push_canvas(
    view: OwnedBatch,
    state: State,
    principal: Principal,
    course_id: Annotated[str, Query(pattern=r"^\d{1,20}$", description="The Canvas course id")],
    assignment_id: Annotated[str, Query(pattern=r"^\d{1,20}$", description="The Canvas assignment id")],
    criterion: Criteria = [],  # noqa: B006
    rubric: Rubric = True,
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
    dry_run: DryRun = False,
) -> Any:
    """Send the class's approved grades to a Canvas assignment (bulk update) with your stored token."""
    base, token = await asyncio.to_thread(lms_push.credentials, state.store, principal, "canvas")
    criteria = canvas_criteria(criterion, rubric)
    selection = await class_selection(state, view, user, draft_policy(None, released_only), "canvas")
    wrapped = exports.canvas_export(selection, criteria, bulk=True)
    request = requests.canvas_push(
        base, token, course_id=course_id, assignment_id=assignment_id, body=wrapped["payload"]
    )
    return await _push(state, "canvas", request, wrapped, dry_run)


@router.post("/batches/{batch_id}/push/moodle")
async def push_moodle(
    view: OwnedBatch,
    state: State,
    principal: Principal,
    assignment_id: Annotated[int, Query(ge=1, description="The Moodle assignment instance id")],
    criterion: Criteria = [],  # noqa: B006
    user: Users = [],  # noqa: B006
    released_only: ReleasedOnly = False,
    include: Include = None,
    workflow: Workflow = "released",
    dry_run: DryRun = False,
) -> Any:
    """Send the class's approved grades to a Moodle assignment (mod_assign_save_grades) with your stored token."""
    base, token = await asyncio.to_thread(lms_push.credentials, state.store, principal, "moodle")
    criteria = parse_criteria(criterion, integer_ids=True) if criterion else None
    selection = await class_selection(state, view, user, draft_policy(include, released_only), "moodle")
    wrapped = exports.moodle_export(selection, assignment_id=assignment_id, criteria=criteria, released_state=workflow)
    return await _push(state, "moodle", requests.moodle_push(base, token, wrapped["payload"]), wrapped, dry_run)
