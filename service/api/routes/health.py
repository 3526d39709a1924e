"""/healthz, /readyz and /metrics: liveness, readiness and the batch queue's figures."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from service.api.deps import State
from service.api.problems import problem
from service.batches.metrics import render_metrics

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
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


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> PlainTextResponse:
    """Batch queue figures in the Prometheus text format."""
    counts = await asyncio.to_thread(state.store.item_counts)
    batches = await state.runner.health()
    return PlainTextResponse(render_metrics(counts, batches), media_type="text/plain; version=0.0.4; charset=utf-8")
