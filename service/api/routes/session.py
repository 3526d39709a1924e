"""Teachers signing in on the page: a session cookie (HttpOnly, SameSite=Lax, Secure over https), their own API keys.

``POST /v1/session`` (email + password) sets the session cookie and a CSRF cookie the page echoes
in ``X-CSRF-Token`` on every change; ``DELETE /v1/session`` signs out; ``GET /v1/me`` says who is
calling. Failed sign-ins count against the address and the email (``DRAFTMARK_AUTH_FAILURES_PER_MINUTE``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from service.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    State,
    presented_token,
    record_failure,
    refuse_if_guessing,
)
from service.persistence.db import LOCAL_OWNER

router = APIRouter(prefix="/v1", tags=["session"])
SESSION_TTL = timedelta(hours=12)


class SignIn(BaseModel):
    """Email and password."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000, repr=False)


class Me(BaseModel):
    """Who is calling."""

    principal: str
    email: str | None
    via: Literal["session", "key", "auth_disabled"]


@router.post("/session")
async def sign_in(body: SignIn, request: Request, state: State) -> JSONResponse:
    """Sign in: 200 with the session cookie, or 401 (the same answer for an unknown email and a wrong password)."""
    now = time.monotonic()
    client = request.client.host if request.client else "unknown"
    account = f"email:{body.email.strip().casefold()}"
    refuse_if_guessing(state, client, now)
    refuse_if_guessing(state, account, now)
    user = await asyncio.to_thread(state.store.authenticate, body.email, body.password)
    if user is None:
        record_failure(state, client, now)
        record_failure(state, account, now)
        raise HTTPException(401, "wrong email or password")
    session = await asyncio.to_thread(state.store.create_session_key, user.id, f"sign-in {user.email}", SESSION_TTL)
    response = JSONResponse(Me(principal=user.id, email=user.email, via="session").model_dump())
    secure = request.url.scheme == "https"
    max_age = int(SESSION_TTL.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, session, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"
    )
    response.set_cookie(
        CSRF_COOKIE, secrets.token_urlsafe(24), max_age=max_age, httponly=False, samesite="lax", secure=secure, path="/"
    )
    return response


@router.delete("/session", status_code=204, response_class=Response)
async def sign_out(request: Request, state: State, principal: Principal) -> Response:
    """Sign out: the session ends on the server too (not only the cookie)."""
    token, from_cookie = presented_token(request)
    if from_cookie:
        digest = await asyncio.to_thread(state.store.revoke_session, token)
        if digest:
            state.key_cache.pop(digest, None)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me")
async def me(request: Request, state: State, principal: Principal) -> Me:
    """The caller: a signed-in teacher, a key, or the local owner when auth is disabled."""
    if state.settings.auth_disabled:
        return Me(principal=LOCAL_OWNER, email=None, via="auth_disabled")
    _, from_cookie = presented_token(request)
    user = await asyncio.to_thread(state.store.user, principal)
    return Me(principal=principal, email=user.email if user else None, via="session" if from_cookie else "key")


class PasswordSet(BaseModel):
    """A one-time link's token and the new password."""

    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=1, max_length=1000, repr=False)


@router.post("/users/password", status_code=204, response_class=Response)
async def set_password(body: PasswordSet, state: State) -> Response:
    """Set a password with the one-time link from ``draftmark users add`` (then sign in)."""
    await asyncio.to_thread(state.store.set_password_with, body.token, body.password)
    return Response(status_code=204)


class KeyCreate(BaseModel):
    """A name for the key (what it is for, e.g. 'Moodle')."""

    name: str = Field(min_length=1, max_length=200)


class KeyPublic(BaseModel):
    """One of the teacher's API keys; ``key`` only in the answer that created it."""

    id: str
    name: str
    revoked: bool
    key: str | None = None


async def _teacher(state: State, principal: str) -> str:
    user = await asyncio.to_thread(state.store.user, principal)
    if user is None:
        raise HTTPException(403, "only a signed-in teacher (or a teacher's key) has keys of their own")
    return user.id


@router.get("/me/keys")
async def my_keys(state: State, principal: Principal) -> list[KeyPublic]:
    """The teacher's API keys (for LMS integrations); they act as the teacher."""
    user_id = await _teacher(state, principal)
    keys = await asyncio.to_thread(state.store.user_keys, user_id)
    return [KeyPublic(id=i, name=n, revoked=r) for i, n, r in keys]


@router.post("/me/keys", status_code=201)
async def create_my_key(body: KeyCreate, state: State, principal: Principal) -> KeyPublic:
    """A new key acting as the teacher; its text is shown once."""
    user_id = await _teacher(state, principal)
    key_id, plaintext = await asyncio.to_thread(state.store.create_user_key, user_id, body.name)
    return KeyPublic(id=key_id, name=body.name, revoked=False, key=plaintext)


@router.delete("/me/keys/{key_id}", status_code=204, response_class=Response)
async def revoke_my_key(key_id: str, state: State, principal: Principal) -> Response:
    """Revoke one of the teacher's keys (within 30 s everywhere)."""
    user_id = await _teacher(state, principal)
    await asyncio.to_thread(state.store.revoke_user_key, user_id, key_id)
    state.key_cache.clear()
    return Response(status_code=204)
