"""``Idempotency-Key`` on POSTs: same key + same body replays; same key + other body is a 409."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import JSONResponse

from service.api.deps import AppState
from service.api.store import ConflictError


async def idempotent(
    request: Request,
    state: AppState,
    principal: str,
    key: str | None,
    status_code: int,
    handler: Callable[[], Awaitable[BaseModel]],
    headers: Callable[[BaseModel], dict[str, str]] | None = None,
) -> JSONResponse:
    """Run ``handler`` once per key; replay its response for identical retries."""
    if key is None:
        model = await handler()
        return JSONResponse(
            model.model_dump(mode="json"), status_code=status_code, headers=headers(model) if headers else None
        )
    route = f"{request.method} {request.url.path}"
    body_hash = hashlib.sha256(await request.body()).hexdigest()
    store = state.store
    existing = await asyncio.to_thread(store.idempotency_begin, principal, key, route, body_hash)
    if existing is not None:
        if existing.body_hash != body_hash or existing.route != route:
            raise ConflictError(
                "this Idempotency-Key was already used with a different request body; use a new key for a new request"
            )
        if existing.status_code is None or existing.response is None:
            raise ConflictError("a request with this Idempotency-Key is still in progress; retry shortly")
        content = json.loads(existing.response)
        return JSONResponse(
            content["body"],
            status_code=existing.status_code,
            headers={**content.get("headers", {}), "Idempotent-Replayed": "true"},
        )
    try:
        model = await handler()
    except BaseException:
        await asyncio.to_thread(store.idempotency_release, principal, key)
        raise
    body = model.model_dump(mode="json")
    extra = headers(model) if headers else {}
    await asyncio.to_thread(
        store.idempotency_finish, principal, key, status_code, json.dumps({"body": body, "headers": extra})
    )
    return JSONResponse(body, status_code=status_code, headers=extra)
