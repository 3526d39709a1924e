"""The /v1 endpoints: thin callers of the pipeline and the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, PlainTextResponse, Response

from evals.dataset import EvalItem
from schemas.scheme import MarkScheme
from schemas.text import unstorable_problem
from service.api import exports
from service.api.deps import LOCAL_PRINCIPAL, Principal, State
from service.api.docx import docx_text
from service.api.exemplar_routes import learn_from_review
from service.api.exemplars import ExemplarStore
from service.api.idempotency import idempotent
from service.api.models import (
    BatchAccepted,
    BatchCreate,
    BatchItemPublic,
    BatchPublic,
    ItemError,
    MarkingCreate,
    MarkingPublic,
    SchemeRegistered,
    _SchemeChoice,
)
from service.api.problems import problem
from service.api.review import ReviewCreate, ReviewPublic, build_review
from service.api.store import BatchView, StoredMarking
from service.api.uploads import read_capped
from service.api.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, check_webhook_url, owner_secret
from service.batches.metrics import render_metrics
from service.errors import CallerError, EssayError, NotFoundError
from service.pipeline import check_essay, check_prompt_size, mark_essay_with_text
from service.prompting import load_prompt
from service.schemes import parse_scheme_document

router = APIRouter(prefix="/v1")
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


class UnsupportedMediaError(CallerError):
    """The upload is neither text nor .docx."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(CallerError):
    """A collection is larger than the configured limit."""

    status_code = 413
    code = "too_many_items"


async def _resolve_scheme(state: State, principal: str, choice: _SchemeChoice) -> MarkScheme:
    """The caller's registered scheme or a built-in; an inline scheme is registered as the caller's first."""
    if choice.scheme is not None:
        await asyncio.to_thread(state.store.put_scheme, choice.scheme, owner=principal)
        return choice.scheme
    assert choice.scheme_id is not None
    found = await asyncio.to_thread(
        state.store.get_scheme, choice.scheme_id, choice.scheme_version, owner=principal
    )
    if found is None:
        which = choice.scheme_id + (f"@{choice.scheme_version}" if choice.scheme_version else "")
        raise NotFoundError(f"no registered mark scheme {which}; list them with GET /v1/schemes or send one inline")
    return found


async def _load_marking(state: State, principal: str, marking_id: str) -> StoredMarking:
    marking = await asyncio.to_thread(state.store.get_marking, marking_id)
    if not state.settings.auth_disabled and principal != LOCAL_PRINCIPAL and marking.owner != principal:
        raise NotFoundError(f"no marking with id {marking_id!r}")
    return marking


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
    tags=["markings"],
    summary="Mark one essay now and store the result",
)
async def create_marking(
    body: MarkingCreate, request: Request, state: State, principal: Principal, idempotency_key: IdempotencyKey = None
) -> Response:
    """Mark an essay synchronously against a registered or inline scheme."""

    async def run() -> BaseModel:
        scheme = await _resolve_scheme(state, principal, body)
        calibrator = await asyncio.to_thread(
            ExemplarStore(state.store).current, principal, scheme.id, scheme.version
        )
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


@router.get("/markings/{marking_id}", response_model=MarkingPublic, tags=["markings"])
async def get_marking(marking_id: str, state: State, principal: Principal) -> MarkingPublic:
    """A stored marking."""
    marking = await _load_marking(state, principal, marking_id)
    reviews = await asyncio.to_thread(state.store.latest_reviews, [marking_id])
    return _public(marking, reviews.get(marking_id))


@router.post("/markings/{marking_id}/review", status_code=201, response_model=ReviewPublic, tags=["review"])
async def approve_marking(marking_id: str, body: ReviewCreate, state: State, principal: Principal) -> ReviewPublic:
    """Approve a draft with the teacher's final marks; the model's draft is kept beside them."""
    marking = await _load_marking(state, principal, marking_id)
    provenance = marking.result.provenance
    scheme = await asyncio.to_thread(
        state.store.get_scheme,
        provenance.scheme_id,
        provenance.scheme_version,
        owner=marking.owner or LOCAL_PRINCIPAL,  # the scheme it was marked with, whoever approves it
    )
    if scheme is None:
        raise NotFoundError(f"scheme {provenance.scheme_id}@{provenance.scheme_version} is no longer registered")
    review = build_review(marking_id, body, marking.result, scheme, datetime.now(UTC))
    await asyncio.to_thread(state.store.save_review, review)
    await learn_from_review(state, principal, marking, review, scheme)
    return review


@router.get("/reviews/export.jsonl", tags=["review"], response_class=Response)
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


_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@router.post("/essays/extract", tags=["markings"])
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


async def _released(state: State, principal: str, marking_id: str) -> exports.Released:
    marking = await _load_marking(state, principal, marking_id)
    reviews = await asyncio.to_thread(state.store.latest_reviews, [marking_id])
    return exports.released(marking.result, reviews.get(marking_id))


@router.get("/markings/{marking_id}/exports/moodle", tags=["exports"])
async def export_moodle(marking_id: str, state: State, principal: Principal) -> dict[str, Any]:
    """Moodle marking-guide shape (criterion -> remark + score): the approved marks once reviewed."""
    return exports.moodle_marking_guide(await _released(state, principal, marking_id))


@router.get("/markings/{marking_id}/exports/canvas", tags=["exports"])
async def export_canvas(
    marking_id: str,
    state: State,
    principal: Principal,
    criterion: Annotated[list[str], Query(description="Map AO ids to Canvas criterion ids: AO1=_1234")] = [],  # noqa: B006
) -> dict[str, Any]:
    """Canvas ``rubric_assessment`` body: the approved marks once reviewed."""
    mapping: dict[str, str] = {}
    for pair in criterion:
        ao, sep, target = pair.partition("=")
        if not sep or not ao or not target:
            raise CallerError(f"criterion must look like AO1=_1234, got {pair!r}")
        mapping[ao] = target
    return exports.canvas_rubric_assessment(await _released(state, principal, marking_id), mapping)


@router.get("/markings/{marking_id}/exports/lti-score", tags=["exports"])
async def export_lti(
    marking_id: str,
    state: State,
    principal: Principal,
    user_id: Annotated[str, Query(min_length=1, max_length=200, description="The LTI user id (sub).")],
) -> dict[str, Any]:
    """LTI 1.3 AGS Score: FullyGraded once approved; a draft stays PendingManual (it never releases itself)."""
    return exports.lti_ags_score(await _released(state, principal, marking_id), user_id)


@router.post(
    "/batches",
    status_code=202,
    response_model=BatchAccepted,
    tags=["batches"],
    summary="Queue many essays for background marking",
)
async def create_batch(
    body: BatchCreate, request: Request, state: State, principal: Principal, idempotency_key: IdempotencyKey = None
) -> Response:
    """Queue a batch; poll GET /v1/batches/{id} or receive the webhook."""
    limit = state.settings.max_batch_items
    if len(body.items) > limit:
        raise PayloadTooLargeError(
            f"a batch may hold at most {limit} essays (DRAFTMARK_MAX_BATCH_ITEMS); got {len(body.items)}"
        )
    essays = []
    for item in body.items:
        try:
            essays.append((item.external_id, check_essay(item.essay, state.settings)))
        except EssayError as exc:
            raise EssayError(f"item {item.external_id!r}: {exc.message}") from exc
    if body.webhook_url is not None:
        if state.settings.webhook_secret is None:
            raise CallerError(
                "this server has no DRAFTMARK_WEBHOOK_SECRET, so it cannot sign webhooks; omit webhook_url"
            )
        await check_webhook_url(body.webhook_url, allow_private=state.settings.webhook_allow_private)

    async def run() -> BaseModel:
        scheme = await _resolve_scheme(state, principal, body)
        template = load_prompt()
        for external_id, essay in essays:
            try:
                check_prompt_size(template, scheme, essay, state.settings)
            except CallerError as exc:
                exc.message = f"item {external_id!r}: {exc.message}"
                raise
        batch_id = await asyncio.to_thread(
            state.store.create_batch,
            scheme,
            essays,
            samples=body.options.samples or state.settings.samples,
            webhook_url=body.webhook_url,
            owner=principal,
        )
        state.runner.wake()
        return BatchAccepted(
            id=batch_id,
            status="queued",
            counts={"total": len(essays), "queued": len(essays)},
            links={"self": f"/v1/batches/{batch_id}", "csv": f"/v1/batches/{batch_id}/export.csv"},
        )

    return await idempotent(
        request,
        state,
        principal,
        idempotency_key,
        202,
        run,
        headers=lambda m: {"Location": f"/v1/batches/{getattr(m, 'id', '')}"},
    )


class WebhookSecret(BaseModel):
    """How your batch webhooks are signed, and the secret to check them with."""

    secret: str
    signature_header: str = SIGNATURE_HEADER
    timestamp_header: str = TIMESTAMP_HEADER
    scheme: str = 'hex HMAC-SHA256 of timestamp + "." + body under the secret, sent as "sha256=<hex>"'


@router.get("/webhooks/secret", response_model=WebhookSecret, tags=["batches"])
async def webhook_secret(state: State, principal: Principal) -> WebhookSecret:
    """Your webhook signing secret: each API key has its own, derived from the server's secret."""
    server_secret = state.settings.webhook_secret
    if server_secret is None:
        raise CallerError("this server has no DRAFTMARK_WEBHOOK_SECRET, so it sends no webhooks")
    return WebhookSecret(secret=owner_secret(server_secret.get_secret_value(), principal))


async def _load_batch(state: State, principal: str, batch_id: str, *, with_items: bool = True) -> BatchView:
    view = await asyncio.to_thread(state.store.get_batch, batch_id, with_items=with_items)
    if not state.settings.auth_disabled and view.owner != principal:
        raise NotFoundError(f"no batch with id {batch_id!r}")
    return view


@router.get("/batches/{batch_id}", response_model=BatchPublic, tags=["batches"])
async def get_batch(batch_id: str, state: State, principal: Principal) -> BatchPublic:
    """Progress (queued / running / done / failed counts) and per-item results."""
    view = await _load_batch(state, principal, batch_id)
    ids = [i.marking_id for i in view.items if i.marking_id]
    results = await asyncio.to_thread(state.store.results_by_id, ids)
    reviews = await asyncio.to_thread(state.store.latest_reviews, ids)
    return BatchPublic(
        id=view.id,
        status=view.status,
        scheme_id=view.scheme_id,
        scheme_version=view.scheme_version,
        counts=view.counts,
        webhook_status=view.webhook_status,
        items=[
            BatchItemPublic(
                external_id=i.external_id,
                status=i.status,
                marking_id=i.marking_id,
                attempts=i.attempts,
                error=ItemError(code=i.error_code, message=i.error_message or "", retryable=bool(i.retryable))
                if i.status == "failed" and i.error_code
                else None,
                draft_total=results[i.marking_id].total if i.marking_id in results else None,
                approved_total=reviews[i.marking_id].total if i.marking_id in reviews else None,
                flags=[f.code.value for f in results[i.marking_id].flags] if i.marking_id in results else [],
            )
            for i in view.items
        ],
    )


@router.post("/batches/{batch_id}/retry", tags=["batches"])
async def retry_batch(batch_id: str, state: State, principal: Principal) -> dict[str, int]:
    """Re-queue the batch's failed, retryable items."""
    await _load_batch(state, principal, batch_id, with_items=False)
    requeued = await asyncio.to_thread(state.store.retry_failed, batch_id)
    state.runner.wake()
    return {"requeued": requeued}


@router.get("/batches/{batch_id}/export.csv", tags=["exports"], response_class=Response)
async def export_batch_csv(batch_id: str, state: State, principal: Principal) -> Response:
    """One CSV row per item, failed items included with their error."""
    view = await _load_batch(state, principal, batch_id)
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
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.csv"'},
    )


@router.get("/schemes", tags=["schemes"])
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


@router.post("/schemes", tags=["schemes"], response_model=SchemeRegistered, status_code=201)
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


@router.post("/schemes/import", tags=["schemes"], response_model=SchemeRegistered, status_code=201)
async def import_scheme(request: Request, state: State, principal: Principal) -> JSONResponse:
    """Register a scheme sent as a YAML or JSON document (the teacher page's scheme upload)."""
    raw = await read_capped(
        request, state.settings.max_scheme_bytes, what="a scheme file", setting="DRAFTMARK_MAX_SCHEME_BYTES"
    )
    scheme = await asyncio.to_thread(parse_scheme_document, raw, source="the uploaded scheme")
    return await register_scheme(scheme, state, principal)


@router.get("/schemes/{scheme_id}", response_model=MarkScheme, tags=["schemes"])
async def get_scheme(scheme_id: str, state: State, principal: Principal, version: str | None = None) -> MarkScheme:
    """One of your schemes or a built-in (newest version unless ``version`` is given)."""
    found = await asyncio.to_thread(state.store.get_scheme, scheme_id, version, owner=principal)
    if found is None:
        raise NotFoundError(f"no registered mark scheme {scheme_id}" + (f"@{version}" if version else ""))
    return found


health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz")
async def readyz(request: Request, state: State) -> Response:
    """The database answers, a model backend is loaded, and batches will make progress.

    In Celery mode that means the broker answers and at least one worker is consuming.
    """
    try:
        await asyncio.to_thread(state.store.ping)
    except Exception as exc:  # any driver error means not ready; report it, do not raise
        return problem(request, 503, "not_ready", "Not ready", f"database unreachable: {type(exc).__name__}")
    batches = await state.runner.health()
    body = {
        "status": "ready" if batches.ready else "not_ready",
        "database": "ok",
        "model": state.llm.model_id,
        "backend": state.llm.endpoint_kind,
        "batches": {"mode": batches.mode, "ready": batches.ready, "workers": batches.workers}
        | ({"broker": batches.broker, "queue_depth": batches.queue_depth} if batches.broker else {})
        | ({"detail": batches.detail} if batches.detail else {}),
    }
    return JSONResponse(body, status_code=200 if batches.ready else 503)


@health.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> PlainTextResponse:
    """Batch queue figures in the Prometheus text format."""
    counts = await asyncio.to_thread(state.store.item_counts)
    batches = await state.runner.health()
    return PlainTextResponse(render_metrics(counts, batches), media_type="text/plain; version=0.0.4; charset=utf-8")
