"""API keys: created once, shown once, stored as an HMAC under the installation's pepper."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import Engine, select

from service.errors import NotFoundError
from service.persistence.db import ApiKeyRow, ServerSecretRow, as_utc, utcnow
from service.persistence.stores.base import StoreBase, new_id


def hash_key(key: str, pepper: bytes) -> str:
    """HMAC-SHA256 of an API key under this installation's secret pepper (kept in the database)."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


class KeyStore(StoreBase):
    """API keys and the pepper they are hashed under."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._pepper_value: bytes | None = None

    def _pepper(self) -> bytes:
        if self._pepper_value is None:
            with self._tx() as s:
                row = s.get(ServerSecretRow, "api_key_pepper")
                if row is None:
                    row = ServerSecretRow(name="api_key_pepper", value=secrets.token_hex(32))
                    s.add(row)
                self._pepper_value = bytes.fromhex(row.value)
        return self._pepper_value

    def key_digest(self, plaintext: str) -> str:
        """The stored form of an API key."""
        return hash_key(plaintext, self._pepper())

    def create_api_key(self, name: str) -> tuple[str, str]:
        """(key id, plaintext key). The plaintext is shown once and never stored."""
        plaintext = "dm_" + secrets.token_urlsafe(32)
        row = ApiKeyRow(id=new_id("key"), name=name, key_hash=self.key_digest(plaintext))
        with self._tx() as s:
            s.add(row)
        return row.id, plaintext

    def principal_for(self, plaintext: str) -> str | None:
        """The key id for a presented key, or None."""
        digest = self.key_digest(plaintext)
        with self.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
            return None
        if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
            return None
        return row.acts_as or row.id

    def create_session_key(self, acts_as: str, name: str, ttl: timedelta) -> str:
        """A sign-in key that acts as ``acts_as`` until it expires (an instructor's LTI launch); plaintext once."""
        plaintext = "dms_" + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=new_id("ses"),
            name=name[:200],
            key_hash=self.key_digest(plaintext),
            acts_as=acts_as,
            expires_at=utcnow() + ttl,
        )
        with self._tx() as s:
            s.add(row)
        return plaintext

    def list_api_keys(self) -> list[tuple[str, str, bool]]:
        """(id, name, revoked) for every key."""
        with self.session() as s:
            rows = s.scalars(select(ApiKeyRow).where(ApiKeyRow.acts_as.is_(None)))
            return [(r.id, r.name, r.revoked_at is not None) for r in rows]

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke a key by id."""
        with self._tx() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            row.revoked_at = utcnow()
