"""The comment bank: comments a teacher saved for one scheme, to insert again while reviewing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from service.errors import CallerError, ConflictError
from service.persistence.db import CommentBankRow, as_utc
from service.persistence.stores.base import StoreBase, new_id

MAX_COMMENT_CHARS = 1000
MAX_COMMENTS_PER_SCHEME = 200


@dataclass(frozen=True)
class SavedComment:
    """One comment in the bank."""

    id: str
    scheme_id: str
    text: str
    created_at: datetime


def _saved(row: CommentBankRow) -> SavedComment:
    return SavedComment(row.id, row.scheme_id, row.text, as_utc(row.created_at))


def clean_comment(text: str) -> str:
    """The comment without surrounding space; refused (422) when empty, too long or holding control characters."""
    cleaned = text.strip()
    if not cleaned:
        raise CallerError("the comment is empty; type the comment to save")
    if len(cleaned) > MAX_COMMENT_CHARS:
        raise CallerError(
            f"the comment has {len(cleaned):,} characters; the limit is {MAX_COMMENT_CHARS:,}: "
            "shorten it or save it in parts"
        )
    # Line breaks are part of a teacher's comment; other control characters are paste debris.
    if not all(c.isprintable() or c == "\n" for c in cleaned.replace("\r\n", "\n")):
        raise CallerError("the comment holds control characters; retype it or paste it as plain text")
    return cleaned.replace("\r\n", "\n")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CommentStore(StoreBase):
    """Saved comments, per owner and scheme."""

    def list_comments(self, scheme_id: str, *, owner: str) -> list[SavedComment]:
        """The owner's comments for the scheme, newest first."""
        with self.session() as s:
            rows = s.scalars(
                select(CommentBankRow)
                .where(CommentBankRow.owner == owner, CommentBankRow.scheme_id == scheme_id)
                .order_by(CommentBankRow.created_at.desc(), CommentBankRow.id.desc())
            )
            return [_saved(row) for row in rows]

    def save_comment(self, scheme_id: str, text: str, *, owner: str) -> tuple[SavedComment, bool]:
        """Save a comment; returns it and whether it is new (the same text again returns the saved one)."""
        cleaned = clean_comment(text)
        digest = _sha(cleaned)
        same = select(CommentBankRow).where(
            CommentBankRow.owner == owner, CommentBankRow.scheme_id == scheme_id, CommentBankRow.text_sha256 == digest
        )
        try:
            with self._tx() as s:
                existing = s.scalar(same)
                if existing is not None:
                    return _saved(existing), False
                count = s.scalar(
                    select(func.count())
                    .select_from(CommentBankRow)
                    .where(CommentBankRow.owner == owner, CommentBankRow.scheme_id == scheme_id)
                )
                if (count or 0) >= MAX_COMMENTS_PER_SCHEME:
                    raise ConflictError(
                        f"the comment bank for {scheme_id} is full ({MAX_COMMENTS_PER_SCHEME} comments); "
                        "delete comments you no longer use, then save this one"
                    )
                row = CommentBankRow(
                    id=new_id("cmt"), owner=owner, scheme_id=scheme_id, text=cleaned, text_sha256=digest
                )
                s.add(row)
                s.flush()
                return _saved(row), True
        except IntegrityError:  # another request saved the same text between our read and write
            with self.session() as s:
                raced = s.scalar(same)
            if raced is None:
                raise
            return _saved(raced), False

    def delete_comment(self, scheme_id: str, comment_id: str, *, owner: str) -> bool:
        """Delete one of the owner's comments; False when there is none with that id (or it is another's)."""
        with self._tx() as s:
            gone = s.execute(
                delete(CommentBankRow).where(
                    CommentBankRow.id == comment_id,
                    CommentBankRow.owner == owner,
                    CommentBankRow.scheme_id == scheme_id,
                )
            )
            return bool(gone.rowcount)  # type: ignore[attr-defined]
