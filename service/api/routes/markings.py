"""/v1/markings and /v1/essays/extract: mark one essay now, read a stored marking back."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from schemas.student import StudentView
from schemas.text import unstorable_problem
from service.api.deps import IdempotencyKey, OwnedMarking, Principal, State
from service.api.idempotency import idempotent
from service.api.models import MarkingCreate, MarkingPublic
from service.api.routes.schemes import resolve_scheme
from service.api.uploads import read_capped
from service.errors import CallerError, ConflictError, EssayError, UnsupportedMediaError
from service.persistence.exemplars import ExemplarStore
from service.persistence.stores import StoredMarking
from service.pipeline import mark_essay_with_text
from service.workflows.docx import docx_text
from service.workflows.review import ReviewPublic
from service.workflows.student import student_view

router = APIRouter(prefix="/v1", tags=["markings"])


def _public(marking: StoredMarking, review: ReviewPublic | None = None) -> MarkingPublic:
    return MarkingPublic(
        id=marking.id,
        external_id=marking.external_id,
        batch_id=marking.batch_id,
        result=marking.result,
        essay=marking.essay,
        review=review,
    )


@router.post(
    "/markings",
    status_code=201,
    response_model=MarkingPublic,
    summary="Mark one essay now and store the result",
)
async def create_marking(
    body: MarkingCreate, request: Request, state: State, principal: Principal, idempotency_key: IdempotencyKey = None
) -> Response:
    """Mark an essay synchronously against a registered or inline scheme."""

    async def run() -> BaseModel:
        scheme = await resolve_scheme(state, principal, body)
        calibrator = await asyncio.to_thread(ExemplarStore(state.store).current, principal, scheme.id, scheme.version)
        marked = await mark_essay_with_text(
            body.essay,
            scheme,
            llm=state.llm,
            settings=state.settings,
            samples=body.options.samples,
            redact_terms=tuple(body.options.redact),
            calibrator=calibrator,
        )
        marking_id = await asyncio.to_thread(
            state.store.save_marking, marked.result, marked.essay, owner=principal, external_id=body.external_id
        )
        return MarkingPublic(id=marking_id, external_id=body.external_id, result=marked.result, essay=marked.essay)

    return await idempotent(
        request,
        state,
        principal,
        idempotency_key,
        201,
        run,
        headers=lambda m: {"Location": f"/v1/markings/{getattr(m, 'id', '')}"},
    )


@router.get("/markings/{marking_id}/student", response_model=StudentView)
async def get_student_view(marking: OwnedMarking, state: State, preview: bool = False) -> StudentView:
    """Exactly what the student receives: the approved marks, comments, feedback and label (409 before approval).

    ``preview=true`` shows the draft as the student would see it before approval (``source: draft``).
    """
    reviews = await asyncio.to_thread(state.store.latest_reviews, [marking.id])
    review = reviews.get(marking.id)
    if review is None and not preview:
        raise ConflictError(
            "this marking is not approved yet: approve it first (POST .../review), or ask for ?preview=true"
        )
    return student_view(marking.result, review, label=state.settings.student_label)


@router.get("/markings/{marking_id}", response_model=MarkingPublic)
async def get_marking(marking: OwnedMarking, state: State) -> MarkingPublic:
    """A stored marking."""
    reviews = await asyncio.to_thread(state.store.latest_reviews, [marking.id])
    return _public(marking, reviews.get(marking.id))


_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@router.post("/essays/extract")
async def extract_essay(request: Request, state: State, principal: Principal) -> dict[str, str]:
    """Plain text from an uploaded .txt (UTF-8) or .docx file sent as the raw request body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in (_DOCX, "text/plain", ""):
        raise UnsupportedMediaError(f"send text/plain or {_DOCX}, not {content_type!r}")
    data = await read_capped(
        request, state.settings.max_upload_bytes, what="an essay file", setting="DRAFTMARK_MAX_UPLOAD_BYTES"
    )
    if content_type == _DOCX:
        text = await asyncio.to_thread(docx_text, data)
    elif content_type in ("text/plain", ""):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CallerError("the file is not UTF-8 text; save it as UTF-8 or upload a .docx") from None
    else:
        raise UnsupportedMediaError(f"send text/plain or {_DOCX}, not {content_type!r}")
    if not text.strip():
        raise EssayError("the file has no text")
    problem = unstorable_problem(text)
    if problem is not None:
        raise EssayError(f"the file {problem}")
    return {"text": text}
