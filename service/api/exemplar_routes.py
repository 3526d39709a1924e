"""/v1/schemes/{id}/exemplars and /calibration: a teacher's marked scripts, and what calibration learnt from them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from schemas.calibration import Calibrator, CrossValidated
from schemas.scheme import MarkScheme
from service.api.deps import Principal, State
from service.api.exemplars import REFIT_EVERY, ExemplarCounts, ExemplarStore, ExemplarView
from service.api.review import ReviewPublic
from service.api.stores import StoredMarking
from service.api.uploads import read_capped
from service.calibration.apply import summary
from service.calibration.fit import MIN_SCRIPTS
from service.calibration.importing import MarkedScript, parse_marked_scripts
from service.calibration.signals import model_marks
from service.errors import NotFoundError

router = APIRouter(prefix="/v1/schemes/{scheme_id}", tags=["calibration"])
Version = Annotated[str | None, Query(max_length=32, description="Scheme version (default: the newest).")]


class ObjectiveCalibration(BaseModel):
    """One objective's cross-validated figures and whether calibration is used for it."""

    ao_id: str
    used: bool
    summary: str
    cv: CrossValidated


class CalibrationPublic(BaseModel):
    """The current calibration for a scheme version (or why there is none)."""

    scheme_id: str
    scheme_version: str
    exemplars: int
    counted_exemplars: int = Field(
        description="Marked scripts calibration learns from: all but drafts approved unchanged with the draft in view."
    )
    new_since_fit: int = Field(description="Counted scripts added or changed since the current fit.")
    refit_every: int = Field(
        default=REFIT_EVERY,
        description="Approvals refit once this many new counted scripts came in (imports, deletions and "
        "POST .../calibration/refit refit at once), so marks do not shift script by script during a sitting.",
    )
    min_exemplars: int = MIN_SCRIPTS
    status: str = Field(description="calibrated | not_used | too_few_exemplars")
    version: str | None = None
    fitted_at: datetime | None = None
    signals_from_model: str | None = None
    objectives: list[ObjectiveCalibration] = Field(default_factory=list)
    message: str
    refit_pending: bool = Field(
        default=False,
        description="The marked scripts changed and the calibration is being refitted in the background; "
        "these figures are the previous fit's. Ask again (GET .../calibration) in a few seconds.",
    )


class ExemplarsImported(BaseModel):
    """The outcome of an import."""

    added: int
    updated: int
    calibration: CalibrationPublic


async def _scheme(state: State, principal: str, scheme_id: str, version: str | None) -> MarkScheme:
    found = await asyncio.to_thread(state.store.get_scheme, scheme_id, version, owner=principal)
    if found is None:
        which = scheme_id + (f"@{version}" if version else "")
        raise NotFoundError(f"no registered mark scheme {which}; list them with GET /v1/schemes")
    return found


def describe(
    scheme: MarkScheme, counts: ExemplarCounts, calibrator: Calibrator | None, *, refit_pending: bool = False
) -> CalibrationPublic:
    """The calibration state as the API, CLI and teacher page show it."""
    pending = " A refit on your changed scripts is running; these are the previous figures." if refit_pending else ""
    not_counted = counts.total - counts.counted
    if not_counted:
        pending += (
            f" {not_counted} approved draft(s) left unchanged with the draft in view are kept but not counted "
            "(they would teach draftmark its own marks; mark blind to have every script count)."
        )
    waiting = counts.new_since_fit if calibrator is not None and not refit_pending else 0
    if waiting:
        pending += (
            f" {waiting} new marked script(s) since this fit: approvals refit after {REFIT_EVERY}, "
            "or refit now from the calibration page."
        )
    common = {
        "scheme_id": scheme.id,
        "scheme_version": scheme.version,
        "exemplars": counts.total,
        "counted_exemplars": counts.counted,
        "new_since_fit": counts.new_since_fit,
        "refit_pending": refit_pending,
    }
    if calibrator is None:
        return CalibrationPublic(
            **common,
            status="too_few_exemplars",
            message=f"uncalibrated: {counts.counted} counted marked script(s); calibration starts at {MIN_SCRIPTS} "
            "(approve scripts or import marked ones)" + pending,
        )
    objectives = [
        ObjectiveCalibration(
            ao_id=fit.ao_id, used=fit.used, summary=summary(fit, calibrator.n_scripts, fit.used), cv=fit.cv
        )
        for fit in calibrator.objectives
    ]
    return CalibrationPublic(
        **common,
        status="calibrated" if calibrator.used else "not_used",
        version=calibrator.version,
        fitted_at=calibrator.fitted_at,
        signals_from_model=calibrator.llm_model,
        objectives=objectives,
        message="; ".join(f"{o.ao_id}: {o.summary}" for o in objectives) + pending,
    )


async def _calibration(state: State, principal: str, scheme: MarkScheme, *, pending: bool) -> CalibrationPublic:
    exemplars = ExemplarStore(state.store)
    counts = await asyncio.to_thread(exemplars.counts, principal, scheme.id, scheme.version)
    calibrator = await asyncio.to_thread(exemplars.current, principal, scheme.id, scheme.version)
    return describe(scheme, counts, calibrator, refit_pending=pending)


@router.get("/calibration", response_model=CalibrationPublic)
async def get_calibration(
    scheme_id: str, state: State, principal: Principal, version: Version = None
) -> CalibrationPublic:
    """Your calibration for the scheme version: cross-validated agreement beside word count and the model alone."""
    scheme = await _scheme(state, principal, scheme_id, version)
    return await _calibration(state, principal, scheme, pending=state.refits.pending(principal, scheme))


@router.post("/calibration/refit", response_model=CalibrationPublic, status_code=202)
async def refit_calibration(
    scheme_id: str, state: State, principal: Principal, version: Version = None
) -> CalibrationPublic:
    """Refit on your marked scripts now (approvals refit every ``refit_every`` new scripts); in the background."""
    scheme = await _scheme(state, principal, scheme_id, version)
    state.refits.request(state.store, principal, scheme)
    return await _calibration(state, principal, scheme, pending=True)


@router.get("/exemplars", response_model=list[ExemplarView])
async def list_exemplars(
    scheme_id: str, state: State, principal: Principal, version: Version = None
) -> list[ExemplarView]:
    """Your marked scripts for the scheme version (approved in draftmark or imported)."""
    scheme = await _scheme(state, principal, scheme_id, version)
    return await asyncio.to_thread(ExemplarStore(state.store).listing, principal, scheme.id, scheme.version)


@router.post("/exemplars", response_model=ExemplarsImported, status_code=201)
async def import_exemplars(
    scheme_id: str, request: Request, state: State, principal: Principal, version: Version = None
) -> ExemplarsImported:
    """Import marked scripts as CSV (``essay`` + one column per objective, optional ``id``) or JSONL (eval format).

    The answer comes at once: the calibration is refitted in the background (``refit_pending`` in
    the answer; GET .../calibration shows the new figures when it is done).
    """
    scheme = await _scheme(state, principal, scheme_id, version)
    data = await read_capped(
        request, state.settings.max_upload_bytes, what="an exemplar file", setting="DRAFTMARK_MAX_UPLOAD_BYTES"
    )
    scripts = await asyncio.to_thread(parse_marked_scripts, data, request.headers.get("content-type", ""), scheme)
    exemplars = ExemplarStore(state.store)
    added, updated = await asyncio.to_thread(exemplars.add, principal, scheme, scripts, source="import")
    state.refits.request(state.store, principal, scheme)
    return ExemplarsImported(
        added=added, updated=updated, calibration=await _calibration(state, principal, scheme, pending=True)
    )


@router.delete("/exemplars/{exemplar_id}", status_code=204)
async def delete_exemplar(
    scheme_id: str, exemplar_id: str, state: State, principal: Principal, version: Version = None
) -> Response:
    """Remove one marked script and, with it, the fit that holds its text; a refit without it runs in the background.

    Until that refit ends (seconds), new markings for this scheme are uncalibrated.
    """
    scheme = await _scheme(state, principal, scheme_id, version)
    exemplars = ExemplarStore(state.store)
    await asyncio.to_thread(exemplars.delete, principal, scheme.id, scheme.version, exemplar_id)
    state.refits.request(state.store, principal, scheme)
    return Response(status_code=204)


def exemplar_from_review(
    owner: str, marking: StoredMarking, review: ReviewPublic, scheme: MarkScheme
) -> Callable[[Session], object]:
    """The write that makes an approved script an exemplar (the teacher's marks; the model's own marks as its signal).

    It runs inside the approval's transaction (``Store.save_review(also=...)``): the approval and
    its exemplar are stored together or not at all. The calibration is refitted afterwards, in the
    background (``Refits``).
    """
    script = MarkedScript(
        essay=marking.essay, marks={m.ao_id: m.mark for m in review.marks}, external_id=marking.external_id
    )
    own = model_marks(marking.result)
    model = marking.result.provenance.model if own is not None else None
    return lambda s: ExemplarStore.upsert(
        s,
        owner,
        scheme,
        script,
        source="approved",
        marking_id=marking.id,
        llm_marks=own,
        llm_model=model,
        basis=review.basis,
    )
