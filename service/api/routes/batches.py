"""/v1/batches and /v1/webhooks: queue many essays for background marking, follow and retry them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from service.api.deps import IdempotencyKey, OwnedBatch, OwnedBatchCounts, Principal, State
from service.api.idempotency import idempotent
from service.api.models import BatchAccepted, BatchCreate, BatchItemPublic, BatchPublic, BatchRename, ItemError
from service.api.routes.schemes import resolve_scheme
from service.errors import CallerError, EssayError, PayloadTooLargeError
from service.pipeline import check_essay, check_prompt_size
from service.prompting import load_prompt
from service.workflows.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, check_webhook_url, owner_secret

router = APIRouter(prefix="/v1", tags=["batches"])


@router.post(
    "/batches",
    status_code=202,
    response_model=BatchAccepted,
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
        scheme = await resolve_scheme(state, principal, body)
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
            name=body.name,
            skipped=body.skipped,
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


@router.get("/webhooks/secret", response_model=WebhookSecret)
async def webhook_secret(state: State, principal: Principal) -> WebhookSecret:
    """Your webhook signing secret: each API key has its own, derived from the server's secret."""
    server_secret = state.settings.webhook_secret
    if server_secret is None:
        raise CallerError("this server has no DRAFTMARK_WEBHOOK_SECRET, so it sends no webhooks")
    return WebhookSecret(secret=owner_secret(server_secret.get_secret_value(), principal))


@router.get("/batches/{batch_id}", response_model=BatchPublic)
async def get_batch(view: OwnedBatch, state: State) -> BatchPublic:
    """Progress (queued / running / done / failed counts) and per-item results."""
    ids = [i.marking_id for i in view.items if i.marking_id]
    results = await asyncio.to_thread(state.store.results_by_id, ids)
    reviews = await asyncio.to_thread(state.store.latest_reviews, ids)
    return BatchPublic(
        id=view.id,
        name=view.name,
        status=view.status,
        scheme_id=view.scheme_id,
        scheme_version=view.scheme_version,
        created_at=view.created_at,
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
                released=i.marking_id in reviews and reviews[i.marking_id].released_at is not None,
                flags=[f.code.value for f in results[i.marking_id].flags] if i.marking_id in results else [],
            )
            for i in view.items
        ],
        skipped=list(view.skipped),
        skipped_dismissed_at=view.skipped_dismissed_at,
    )


@router.post("/batches/{batch_id}/skipped/dismiss", response_model=BatchPublic)
async def dismiss_skipped(view: OwnedBatchCounts, state: State) -> BatchPublic:
    """Stop showing the set's skipped files on the class view; they stay listed here, with when they were dismissed."""
    await asyncio.to_thread(state.store.dismiss_skipped, view.id)
    fresh = await asyncio.to_thread(state.store.get_batch, view.id)
    return await get_batch(fresh, state)


@router.post("/batches/{batch_id}/rename", response_model=BatchPublic)
async def rename_items(body: BatchRename, view: OwnedBatchCounts, state: State) -> BatchPublic:
    """Give scripts of a finished class set new ids (the LMS's user ids, from the roster match)."""
    await asyncio.to_thread(state.store.rename_items, view.id, dict(body.renames))
    fresh = await asyncio.to_thread(state.store.get_batch, view.id)
    return await get_batch(fresh, state)


@router.post("/batches/{batch_id}/release")
async def release_batch(view: OwnedBatch, state: State, principal: Principal) -> dict[str, Any]:
    """Release every approved script of the class set to its student; names those not approved (left as they are)."""
    ids = {i.marking_id: i.external_id for i in view.items if i.marking_id}
    released, unapproved = await asyncio.to_thread(state.store.release, list(ids), principal)
    unmarked = [i.external_id for i in view.items if not i.marking_id]
    return {"released": len(released), "not_approved": [ids[m] for m in unapproved], "not_marked": unmarked}


@router.post("/batches/{batch_id}/retry")
async def retry_batch(view: OwnedBatchCounts, state: State) -> dict[str, int]:
    """Re-queue the batch's failed, retryable items."""
    requeued = await asyncio.to_thread(state.store.retry_failed, view.id)
    state.runner.wake()
    return {"requeued": requeued}
