"""``Idempotency-Key`` on POSTs: same key + same body replays; same key + other body is a 409.

While the first request runs it holds the key under a lease that it renews; a retry meanwhile is a
409 ``idempotency_in_progress`` with ``Retry-After``. A request that died (its process crashed)
stops renewing, and once the lease runs out a retry with the same key and body runs afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from service.api.deps import AppState
from service.errors import ConflictError, IdempotencyInProgressError
from service.persistence.stores import Store

log = logging.getLogger("draftmark.api")


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
    lease_s = state.settings.idempotency_lease_s
    holder = uuid.uuid4().hex
    existing = await asyncio.to_thread(
        store.idempotency_begin, principal, key, route, body_hash, lease_s=lease_s, holder=holder
    )
    if existing is not None:
        if existing.body_hash != body_hash or existing.route != route:
            raise ConflictError(
                "this Idempotency-Key was already used with a different request body; use a new key for a new request"
            )
        if existing.status_code is None or existing.response is None:
            expires = existing.lease_expires_at
            left = lease_s if expires is None else (_aware(expires) - datetime.now(UTC)).total_seconds()
            raise IdempotencyInProgressError(
                "a request with this Idempotency-Key is still in progress; retry after the Retry-After seconds",
                retry_after=max(1, math.ceil(left)),
            )
        content = json.loads(existing.response)
        return JSONResponse(
            content["body"],
            status_code=existing.status_code,
            headers={**content.get("headers", {}), "Idempotent-Replayed": "true"},
        )
    renewing = asyncio.create_task(_renew(store, principal, key, holder, lease_s))
    try:
        model = await handler()
    except BaseException:
        renewing.cancel()
        await asyncio.to_thread(store.idempotency_release, principal, key, holder)
        raise
    renewing.cancel()
    body = model.model_dump(mode="json")
    extra = headers(model) if headers else {}
    stored = await asyncio.to_thread(
        store.idempotency_finish, principal, key, holder, status_code, json.dumps({"body": body, "headers": extra})
    )
    if not stored:
        log.warning("idempotency key lease ran out before the response was stored; a retry may have run it again")
    return JSONResponse(body, status_code=status_code, headers=extra)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC


async def _renew(store: Store, principal: str, key: str, holder: str, lease_s: float) -> None:
    """Keep the key's lease while the request runs, so only a request that died loses it."""
    while True:
        await asyncio.sleep(lease_s / 3)
        with contextlib.suppress(SQLAlchemyError):  # the next renewal may get through
            if not await asyncio.to_thread(store.idempotency_renew, principal, key, holder, lease_s=lease_s):
                return
