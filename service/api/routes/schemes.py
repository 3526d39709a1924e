"""/v1/schemes: the caller's registered mark schemes beside the built-ins."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from schemas.scheme import MarkScheme
from service.api.deps import Principal, State
from service.api.models import SchemeRegistered, _SchemeChoice
from service.api.uploads import read_capped
from service.errors import NotFoundError
from service.schemes import parse_scheme_document

router = APIRouter(prefix="/v1", tags=["schemes"])


async def resolve_scheme(state: State, principal: str, choice: _SchemeChoice) -> MarkScheme:
    """The caller's registered scheme or a built-in; an inline scheme is registered as the caller's first."""
    if choice.scheme is not None:
        await asyncio.to_thread(state.store.put_scheme, choice.scheme, owner=principal)
        return choice.scheme
    assert choice.scheme_id is not None
    found = await asyncio.to_thread(state.store.get_scheme, choice.scheme_id, choice.scheme_version, owner=principal)
    if found is None:
        which = choice.scheme_id + (f"@{choice.scheme_version}" if choice.scheme_version else "")
        raise NotFoundError(f"no registered mark scheme {which}; list them with GET /v1/schemes or send one inline")
    return found


@router.get("/schemes")
async def list_schemes(state: State, principal: Principal) -> list[dict[str, Any]]:
    """Every scheme version you can use: the ones you registered and the built-ins (``builtin``: true)."""
    listed = await asyncio.to_thread(state.store.list_schemes, owner=principal)
    return [
        {
            "id": entry.scheme.id,
            "version": entry.scheme.version,
            "title": entry.scheme.title,
            "subject": entry.scheme.subject,
            "total_marks": entry.scheme.total_marks,
            "objectives": [ao.id for ao in entry.scheme.objectives],
            "builtin": entry.builtin,
        }
        for entry in listed
    ]


@router.post("/schemes", response_model=SchemeRegistered, status_code=201)
async def register_scheme(scheme: MarkScheme, state: State, principal: Principal) -> JSONResponse:
    """Register (validate and store) a scheme version of your own.

    A registered id@version never changes: the same content again is a 200, other content a 409.
    Built-in ids are read-only. Other API keys never see your schemes.
    """
    created = await asyncio.to_thread(state.store.put_scheme, scheme, owner=principal)
    body = SchemeRegistered(id=scheme.id, version=scheme.version, created=created)
    return JSONResponse(
        body.model_dump(),
        status_code=201 if created else 200,
        headers={"Location": f"/v1/schemes/{scheme.id}?version={scheme.version}"},
    )


@router.post("/schemes/import", response_model=SchemeRegistered, status_code=201)
async def import_scheme(request: Request, state: State, principal: Principal) -> JSONResponse:
    """Register a scheme sent as a YAML or JSON document (the teacher page's scheme upload)."""
    raw = await read_capped(
        request, state.settings.max_scheme_bytes, what="a scheme file", setting="DRAFTMARK_MAX_SCHEME_BYTES"
    )
    scheme = await asyncio.to_thread(parse_scheme_document, raw, source="the uploaded scheme")
    return await register_scheme(scheme, state, principal)


@router.get("/schemes/{scheme_id}", response_model=MarkScheme)
async def get_scheme(scheme_id: str, state: State, principal: Principal, version: str | None = None) -> MarkScheme:
    """One of your schemes or a built-in (newest version unless ``version`` is given)."""
    found = await asyncio.to_thread(state.store.get_scheme, scheme_id, version, owner=principal)
    if found is None:
        raise NotFoundError(f"no registered mark scheme {scheme_id}" + (f"@{version}" if version else ""))
    return found
