"""Typed FastAPI dependencies: application state, the calling principal, and what it owns."""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from service.batches import BatchBackend
from service.errors import NotFoundError
from service.llm.port import LLM
from service.persistence.db import LOCAL_OWNER
from service.persistence.stores import BatchView, Store, StoredMarking
from service.settings import Settings
from service.workflows.lti import ScoreSender
from service.workflows.refits import Refits

_KEY_CACHE_TTL_S = 30.0


@dataclass
class AppState:
    """Everything built once in the lifespan."""

    settings: Settings
    store: Store
    llm: LLM
    runner: BatchBackend
    key_cache: dict[str, tuple[str, float]] = field(default_factory=dict)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    auth_failures: dict[str, TokenBucket] = field(default_factory=dict)
    refits: Refits = field(default_factory=Refits)
    lti_sender: ScoreSender = field(default_factory=ScoreSender)


@dataclass
class TokenBucket:
    """Per-key rate limit: ``rate`` requests per minute, bursts up to the same number."""

    rate_per_minute: int
    tokens: float = -1.0
    updated: float = 0.0

    def _refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.updated = float(self.rate_per_minute), now
        per_second = self.rate_per_minute / 60
        self.tokens = min(float(self.rate_per_minute), self.tokens + (now - self.updated) * per_second)
        self.updated = now

    def take(self, now: float) -> float:
        """0 if a request may proceed, else the seconds until one may."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return self.wait(now)

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 if one is), without taking it."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / (self.rate_per_minute / 60)

    def full(self, now: float) -> bool:
        """No token has been taken that has not grown back (the bucket can be forgotten)."""
        self._refill(now)
        return self.tokens >= self.rate_per_minute


def get_state(request: Request) -> AppState:
    """The application's state."""
    state: AppState = request.app.state.draftmark
    return state


State = Annotated[AppState, Depends(get_state)]

LOCAL_PRINCIPAL = LOCAL_OWNER


def ops_authorized(request: Request, state: AppState) -> bool:
    """The caller may read operational detail: no ``DRAFTMARK_OPS_TOKEN`` is set, or it sent that token."""
    token = state.settings.ops_token
    if token is None:
        return True
    expected = f"Bearer {token.get_secret_value()}".encode()
    return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected)


async def require_ops(request: Request, state: State) -> None:
    """401 unless ``ops_authorized`` (metrics and the API description)."""
    if not ops_authorized(request, state):
        raise HTTPException(
            401,
            "this server requires its operations token here: send 'Authorization: Bearer <DRAFTMARK_OPS_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


OpsOnly = Depends(require_ops)


SESSION_COOKIE = "draftmark_session"
CSRF_COOKIE = "draftmark_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def presented_token(request: Request) -> tuple[str, bool]:
    """(the key or session token, whether it came from the sign-in cookie); a cookie write must carry the CSRF header.

    A bearer key wins over the cookie. With the cookie, every request that changes something must
    send ``X-CSRF-Token`` equal to the ``draftmark_csrf`` cookie (double submit): another site can make
    the browser send the cookie, but cannot read it to set the header.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie:
        if request.method not in _SAFE_METHODS:
            sent, expected = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
            if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                raise HTTPException(403, "missing or wrong X-CSRF-Token header for a signed-in change: reload the page")
        return cookie, True
    raise HTTPException(
        401,
        "sign in on the page, or send 'Authorization: Bearer <key>' (create a key with 'draftmark keys create NAME')",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def get_principal(request: Request, state: State) -> str:
    """The owner behind the sign-in cookie or ``Authorization: Bearer`` (a teacher, or a key); 401 otherwise.

    Verified keys are cached for 30 s by hash, so a revoked key stops working within 30 s (signing out
    drops the session from this process's cache at once).
    """
    if state.settings.auth_disabled:
        return LOCAL_PRINCIPAL
    token, _ = presented_token(request)
    digest = state.store.key_digest(token)  # the pepper is loaded at start-up: no I/O here
    cached = state.key_cache.get(digest)
    now = time.monotonic()
    if cached and cached[1] > now:
        return _rate_limited(state, cached[0], now)
    client = request.client.host if request.client else "unknown"
    refuse_if_guessing(state, client, now)
    principal = await asyncio.to_thread(state.store.principal_for, token)
    if principal is None:
        record_failure(state, client, now)
        raise HTTPException(401, "the API key is not valid or has been revoked", headers={"WWW-Authenticate": "Bearer"})
    state.key_cache[digest] = (principal, now + _KEY_CACHE_TTL_S)
    return _rate_limited(state, principal, now)


_MAX_TRACKED_CLIENTS = 10_000


def refuse_if_guessing(state: AppState, client: str, now: float) -> None:
    """429 for an address that has used up its failed authentications: it gets no key lookups until they regrow.

    A key already verified (and cached) still works from that address; only unknown keys are refused.
    """
    limit = state.settings.auth_failures_per_minute
    bucket = state.auth_failures.get(client)
    if not limit or bucket is None:
        return
    wait = bucket.wait(now)
    if wait:
        raise HTTPException(
            429,
            f"too many failed authentications from this address (at most {limit} a minute, "
            "DRAFTMARK_AUTH_FAILURES_PER_MINUTE); check the API key and retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def record_failure(state: AppState, client: str, now: float) -> None:
    """Count one failed authentication against ``client`` (an address, or ``email:...`` for sign-ins)."""
    limit = state.settings.auth_failures_per_minute
    if not limit:
        return
    if len(state.auth_failures) >= _MAX_TRACKED_CLIENTS:  # bound the memory many addresses can take
        for address in [a for a, b in state.auth_failures.items() if b.full(now)]:
            del state.auth_failures[address]
    state.auth_failures.setdefault(client, TokenBucket(limit)).take(now)


def _rate_limited(state: AppState, principal: str, now: float) -> str:
    limit = state.settings.rate_limit_per_minute
    if limit:
        bucket = state.buckets.setdefault(principal, TokenBucket(limit))
        wait = bucket.take(now)
        if wait:
            raise HTTPException(
                429,
                f"this API key is limited to {limit} requests per minute "
                "(DRAFTMARK_RATE_LIMIT_PER_MINUTE); retry later",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
    return principal


Principal = Annotated[str, Depends(get_principal)]


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def owned_marking(marking_id: str, state: State, principal: Principal) -> StoredMarking:
    """The marking at ``{marking_id}``; 404 if it does not exist or belongs to another API key.

    Someone else's marking reads as absent, so ids cannot be probed. With auth disabled, and for
    the local principal, every marking is visible.
    """
    marking = await asyncio.to_thread(state.store.get_marking, marking_id)
    if not state.settings.auth_disabled and principal != LOCAL_PRINCIPAL and marking.owner != principal:
        raise NotFoundError(f"no marking with id {marking_id!r}")
    return marking


OwnedMarking = Annotated[StoredMarking, Depends(owned_marking)]


async def _owned_batch(batch_id: str, state: AppState, principal: str, *, with_items: bool) -> BatchView:
    view = await asyncio.to_thread(state.store.get_batch, batch_id, with_items=with_items)
    if not state.settings.auth_disabled and view.owner != principal:
        raise NotFoundError(f"no batch with id {batch_id!r}")
    return view


async def owned_batch(batch_id: str, state: State, principal: Principal) -> BatchView:
    """The batch at ``{batch_id}`` with its items; 404 if it does not exist or belongs to another API key."""
    return await _owned_batch(batch_id, state, principal, with_items=True)


async def owned_batch_counts(batch_id: str, state: State, principal: Principal) -> BatchView:
    """As ``owned_batch``, counts only (no items read): for routes that act on a batch without listing it."""
    return await _owned_batch(batch_id, state, principal, with_items=False)


OwnedBatch = Annotated[BatchView, Depends(owned_batch)]
OwnedBatchCounts = Annotated[BatchView, Depends(owned_batch_counts)]
