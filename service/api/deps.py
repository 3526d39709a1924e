"""Typed FastAPI dependencies: application state and the calling principal."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from service.api.store import Store, hash_key
from service.api.worker import BatchRunner
from service.llm.port import LLM
from service.settings import Settings

_KEY_CACHE_TTL_S = 30.0


@dataclass
class AppState:
    """Everything built once in the lifespan."""

    settings: Settings
    store: Store
    llm: LLM
    runner: BatchRunner
    key_cache: dict[str, tuple[str, float]] = field(default_factory=dict)


def get_state(request: Request) -> AppState:
    """The application's state."""
    state: AppState = request.app.state.draftmark
    return state


State = Annotated[AppState, Depends(get_state)]

LOCAL_PRINCIPAL = "local"


async def get_principal(request: Request, state: State) -> str:
    """The API key id behind ``Authorization: Bearer``; 401 with a fix-it message otherwise.

    Verified keys are cached for 30 s by hash, so a revoked key stops working within 30 s.
    """
    if state.settings.auth_disabled:
        return LOCAL_PRINCIPAL
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401,
            "send 'Authorization: Bearer <key>'; create a key with 'draftmark keys create NAME'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hash_key(token.strip())
    cached = state.key_cache.get(digest)
    now = time.monotonic()
    if cached and cached[1] > now:
        return cached[0]
    principal = await asyncio.to_thread(state.store.principal_for, token.strip())
    if principal is None:
        raise HTTPException(401, "the API key is not valid or has been revoked", headers={"WWW-Authenticate": "Bearer"})
    state.key_cache[digest] = (principal, now + _KEY_CACHE_TTL_S)
    return principal


Principal = Annotated[str, Depends(get_principal)]
