"""/v1/schemes/{id}/exemplars and /calibration: a teacher's marked scripts, and what calibration learnt from them."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from schemas.scheme import MarkScheme
from service.api.deps import Principal, State
from service.api.uploads import read_capped
from service.calibration.importing import parse_marked_scripts
from service.errors import NotFoundError
from service.persistence.exemplars import ExemplarStore, ExemplarView
from service.workflows.calibration import CalibrationPublic, describe

router = APIRouter(prefix="/v1/schemes/{scheme_id}", tags=["calibration"])
Version = Annotated[str | None, Query(max_length=32, description="Scheme version (default: the newest).")]


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
