"""Query parameters and selection shared by the LMS routes (exports and direct pushes)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import Query

from service.api.deps import State
from service.lms.common import Criterion, MappingError, parse_criteria, parse_users
from service.persistence.stores import BatchView
from service.workflows import exports
from service.workflows.exports import DraftPolicy, Platform, Selection

Criteria = Annotated[
    list[str],
    Query(description="Objective -> LMS criterion id, optionally its points: AO1=_1234:6 (Canvas), AO1=101 (Moodle)"),
]
Users = Annotated[
    list[str], Query(description="Class set id -> LMS user id: alice.docx=1234 (default: the class set's ids)")
]
Include = Annotated[
    Literal["drafts"] | None,
    Query(description="Send unapproved scripts held back (Moodle inmarking, LTI PendingManual without a score)"),
]
ReleasedOnly = Annotated[
    bool, Query(description="Leave out scripts not approved and released (listed under held_back)")
]
Rubric = Annotated[
    bool, Query(description="Canvas: send rubric points per criterion (then every objective needs criterion=)")
]
Workflow = Annotated[
    Literal["released", "readyforrelease"], Query(description="Moodle marking workflow state for approved marks")
]


def draft_policy(include: str | None, released_only: bool) -> DraftPolicy:
    """Refuse drafts (default), leave them out (``released_only``) or hold them back (``include=drafts``)."""
    if include and released_only:
        raise MappingError("choose include=drafts or released_only=true, not both")
    return "include" if include else "released_only" if released_only else "refuse"


def canvas_criteria(pairs: list[str], rubric: bool) -> dict[str, Criterion] | None:
    """The rubric mapping (every objective, when a rubric is sent), or None without a rubric."""
    if not rubric:
        if pairs:
            raise MappingError("criterion= is for the rubric: drop it or rubric=false")
        return None
    if not pairs:
        raise MappingError(
            "Canvas needs the rubric criterion id of every objective: pass criterion=AO1=_1234 (add :points "
            "to check maxima) for each, or rubric=false to send the grade and comment only"
        )
    return parse_criteria(pairs)


async def class_selection(
    state: State, view: BatchView, users: list[str], policy: DraftPolicy, platform: Platform
) -> Selection:
    """The class set's scripts keyed by LMS user id, after the draft policy."""
    selection = await asyncio.to_thread(
        exports.class_scripts, state.store, view, users=parse_users(users), label=state.settings.student_label
    )
    return exports.apply_policy(selection, policy, platform=platform)
