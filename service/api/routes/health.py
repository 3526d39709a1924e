"""/healthz, /readyz, /metrics and the API description: liveness, readiness, the batch queue's figures.

/healthz answers everyone. Without ``DRAFTMARK_OPS_TOKEN`` (the default) so do the others, as
probes and scrapers on a private network expect; with it, /metrics and the API description need
the token and /readyz tells others only whether it is ready.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from service.api.deps import OpsOnly, State, ops_authorized
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

    In Celery mode that means the broker answers and at least one worker is consuming. With
    ``DRAFTMARK_OPS_TOKEN`` set, a caller without it gets the status alone.
    """
    try:
        await asyncio.to_thread(state.store.ping)
    except Exception as exc:  # any driver error means not ready; report it, do not raise
        return problem(request, 503, "not_ready", "Not ready", f"database unreachable: {type(exc).__name__}")
    batches = await state.runner.health()
    status, code = ("ready", 200) if batches.ready else ("not_ready", 503)
    if not ops_authorized(request, state):
        return JSONResponse({"status": status}, status_code=code)
    body = {
        "status": status,
        "database": "ok",
        "model": state.llm.model_id,
        "backend": state.llm.endpoint_kind,
        "batches": {"mode": batches.mode, "ready": batches.ready, "workers": batches.workers}
        | ({"broker": batches.broker, "queue_depth": batches.queue_depth} if batches.broker else {})
        | ({"detail": batches.detail} if batches.detail else {}),
    }
    return JSONResponse(body, status_code=code)


@router.get("/metrics", response_class=PlainTextResponse, dependencies=[OpsOnly])
async def metrics(state: State) -> PlainTextResponse:
    """Batch queue figures in the Prometheus text format."""
    counts = await asyncio.to_thread(state.store.item_counts)
    batches = await state.runner.health()
    return PlainTextResponse(render_metrics(counts, batches), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/openapi.json", include_in_schema=False, dependencies=[OpsOnly])
async def openapi(request: Request) -> JSONResponse:
    """The API's OpenAPI description (behind the operations token when one is set)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[OpsOnly])
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI (behind the operations token when one is set: the page then needs the header too)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - API")


@router.get("/redoc", include_in_schema=False, dependencies=[OpsOnly])
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc (behind the operations token when one is set)."""
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - API")
