"""Teachers: accounts with an argon2 password hash, one-time set-password links, and the keys they own.

A teacher's id is the owner of everything their sign-in sessions and API keys create (keys and
sessions are ``api_keys`` rows that act as the teacher).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from pwdlib import PasswordHash
from sqlalchemy import select

from service.errors import CallerError, ConflictError, NotFoundError
from service.persistence.db import ApiKeyRow, PasswordTokenRow, UserRow, as_utc, utcnow
from service.persistence.stores.base import new_id
from service.persistence.stores.keys import KeyStore

_HASHER = PasswordHash.recommended()  # argon2id
_DUMMY = _HASHER.hash("draftmark-no-such-user")  # verify against it for unknown emails: same time either way
LINK_TTL = timedelta(days=3)
MIN_PASSWORD = 10


@dataclass(frozen=True)
class User:
    """A teacher as the API shows them."""

    id: str
    email: str
    has_password: bool
    disabled: bool


def _user(row: UserRow) -> User:
    return User(row.id, row.email, row.password_hash is not None, row.disabled_at is not None)


def normal_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding space."""
    text = email.strip().casefold()
    if "@" not in text or len(text) > 320 or any(c.isspace() for c in text):
        raise CallerError(f"not an email address: {email!r}")
    return text


def check_password(password: str) -> None:
    """At least 10 characters, at most 1,000 (argon2 hashes any length; this bounds the work)."""
    if len(password) < MIN_PASSWORD:
        raise CallerError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1000:
        raise CallerError("the password is longer than 1,000 characters")


class UserStore(KeyStore):
    """Accounts, set-password links and the keys a teacher owns."""

    def add_user(self, email: str, password: str | None = None) -> tuple[User, str | None]:
        """A new teacher, with a password or else a one-time set-password token (returned once)."""
        address = normal_email(email)
        if password is not None:
            check_password(password)
        with self._tx() as s:
            if s.scalar(select(UserRow).where(UserRow.email == address)) is not None:
                raise ConflictError(f"{address} already has an account")
            row = UserRow(id=new_id("usr"), email=address, password_hash=_HASHER.hash(password) if password else None)
            s.add(row)
        token = None if password is not None else self.password_link(row.id)
        return _user(row), token

    def password_link(self, user_id: str) -> str:
        """A fresh one-time token to set the password (valid three days)."""
        token = secrets.token_urlsafe(32)
        with self._tx() as s:
            s.add(
                PasswordTokenRow(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    user_id=user_id,
                    expires_at=utcnow() + LINK_TTL,
                )
            )
        return token

    def set_password_with(self, token: str, password: str) -> User:
        """Use a set-password token once."""
        check_password(password)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._tx() as s:
            link = s.get(PasswordTokenRow, digest)
            if link is None or link.used_at is not None or as_utc(link.expires_at) < utcnow():
                raise CallerError("this link is not valid (used, expired or mistyped): ask for a new one")
            row = s.get(UserRow, link.user_id)
            if row is None or row.disabled_at is not None:
                raise CallerError("this account is disabled")
            link.used_at = utcnow()
            row.password_hash = _HASHER.hash(password)
            return _user(row)

    def authenticate(self, email: str, password: str) -> User | None:
        """The teacher for a correct email and password (same work for unknown emails), else None."""
        try:
            address = normal_email(email)
        except CallerError:
            address = ""
        with self.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.email == address)) if address else None
        stored = row.password_hash if row is not None and row.password_hash else _DUMMY
        ok = _HASHER.verify(password[:1000], stored)
        if row is None or not ok or row.password_hash is None or row.disabled_at is not None:
            return None
        return _user(row)

    def user(self, user_id: str) -> User | None:
        """A teacher by id."""
        with self.session() as s:
            row = s.get(UserRow, user_id)
        return _user(row) if row else None

    def users(self) -> list[User]:
        """Every account."""
        with self.session() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.created_at))]

    def disable_user(self, email: str) -> None:
        """Disable an account and end its sessions and keys."""
        with self._tx() as s:
            row = s.scalar(select(UserRow).where(UserRow.email == normal_email(email)))
            if row is None:
                raise NotFoundError(f"no account for {email!r}")
            row.disabled_at = utcnow()
            for key in s.scalars(select(ApiKeyRow).where(ApiKeyRow.acts_as == row.id)):
                key.revoked_at = key.revoked_at or utcnow()

    def create_user_key(self, user_id: str, name: str) -> tuple[str, str]:
        """An API key that acts as the teacher (for an LMS integration); plaintext once."""
        key_id, plaintext = self.create_api_key(name)
        with self._tx() as s:
            row = s.get(ApiKeyRow, key_id)
            assert row is not None
            row.acts_as = user_id
        return key_id, plaintext

    def user_keys(self, user_id: str) -> list[tuple[str, str, bool]]:
        """(id, name, revoked) of the teacher's API keys (not their sign-in sessions)."""
        with self.session() as s:
            rows = s.scalars(
                select(ApiKeyRow).where(ApiKeyRow.acts_as == user_id, ApiKeyRow.expires_at.is_(None))
            ).all()
            return [(r.id, r.name, r.revoked_at is not None) for r in rows]

    def revoke_user_key(self, user_id: str, key_id: str) -> None:
        """Revoke one of the teacher's keys or sessions."""
        with self._tx() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None or row.acts_as != user_id:
                raise NotFoundError(f"no API key with id {key_id!r}")
            row.revoked_at = row.revoked_at or utcnow()

    def revoke_session(self, plaintext: str) -> str | None:
        """End the sign-in session whose key this is; returns the key's digest (to drop from caches)."""
        digest = self.key_digest(plaintext)
        with self._tx() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
            if row is None or row.expires_at is None:
                return None
            row.revoked_at = row.revoked_at or utcnow()
        return str(digest)
