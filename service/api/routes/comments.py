"""/v1/schemes/{scheme_id}/comments: the caller's comment bank for one scheme."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from service.api.deps import Principal, State
from service.errors import NotFoundError
from service.persistence.stores import SavedComment

router = APIRouter(prefix="/v1", tags=["comments"])

SchemeId = Annotated[str, Path(max_length=64)]


class CommentCreate(BaseModel):
    """A comment to save; checked by the store (empty, over 1,000 characters or control characters: 422)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=4000, examples=["Support each claim with a dated example."])


class CommentPublic(BaseModel):
    """A saved comment."""

    id: str
    scheme_id: str
    text: str
    created_at: datetime


def _public(comment: SavedComment) -> CommentPublic:
    return CommentPublic(id=comment.id, scheme_id=comment.scheme_id, text=comment.text, created_at=comment.created_at)


@router.get("/schemes/{scheme_id}/comments", response_model=list[CommentPublic])
async def list_comments(scheme_id: SchemeId, state: State, principal: Principal) -> list[CommentPublic]:
    """Your saved comments for this scheme, newest first."""
    saved = await asyncio.to_thread(state.store.list_comments, scheme_id, owner=principal)
    return [_public(comment) for comment in saved]


@router.post("/schemes/{scheme_id}/comments", response_model=CommentPublic, status_code=201)
async def save_comment(scheme_id: SchemeId, body: CommentCreate, state: State, principal: Principal) -> JSONResponse:
    """Save a comment (201); the same text again returns the saved one (200). At most 200 per scheme (409)."""
    comment, created = await asyncio.to_thread(state.store.save_comment, scheme_id, body.text, owner=principal)
    return JSONResponse(_public(comment).model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/schemes/{scheme_id}/comments/{comment_id}", status_code=204, response_class=Response)
async def delete_comment(
    scheme_id: SchemeId, comment_id: Annotated[str, Path(max_length=64)], state: State, principal: Principal
) -> Response:
    """Delete one of your saved comments."""
    if not await asyncio.to_thread(state.store.delete_comment, scheme_id, comment_id, owner=principal):
        raise NotFoundError(
            f"no saved comment {comment_id} for {scheme_id}; list them with GET /v1/schemes/{scheme_id}/comments"
        )
    return Response(status_code=204)
