"""The /v1 endpoints, one module per resource: thin callers of the pipeline and the store."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.routes import batches, comments, exports, lms, lti, markings, reviews, schemes, session
from service.api.routes.health import router as health

router = APIRouter()
for _resource in (markings, reviews, exports, batches, schemes, comments, lti, lms, session):
    router.include_router(_resource.router)

__all__ = ["health", "router"]
