"""Owners' own LMS API tokens (for direct pushes), encrypted at rest with a per-installation key.

The key lives in ``server_secrets`` beside the data, so encryption protects a token in a copied
table or a log of rows, not from someone who holds the whole database; tokens are never returned
by the API or written to logs.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import delete, select

from service.persistence.db import LmsConnectionRow, ServerSecretRow, utcnow
from service.persistence.stores.base import StoreBase


class LmsConnectionStore(StoreBase):
    """``(owner, kind) -> (base URL, token)``."""

    _fernet_value: Fernet | None = None

    def _fernet(self) -> Fernet:
        if self._fernet_value is None:
            with self._tx() as s:
                row = s.get(ServerSecretRow, "lms_token_key")
                if row is None:
                    row = ServerSecretRow(name="lms_token_key", value=Fernet.generate_key().decode())
                    s.add(row)
                self._fernet_value = Fernet(row.value.encode())
        return self._fernet_value

    def save_connection(self, owner: str, kind: str, base_url: str, token: str) -> None:
        """Store (or replace) the owner's token for an LMS kind."""
        secret = self._fernet().encrypt(token.encode()).decode()
        with self._tx() as s:
            row = s.scalar(
                select(LmsConnectionRow).where(LmsConnectionRow.owner == owner, LmsConnectionRow.kind == kind)
            )
            if row is None:
                row = LmsConnectionRow(owner=owner, kind=kind)
                s.add(row)
            row.base_url, row.token_encrypted, row.updated_at = base_url, secret, utcnow()

    def connection(self, owner: str, kind: str) -> tuple[str, str] | None:
        """(base URL, token) or None."""
        with self.session() as s:
            row = s.scalar(
                select(LmsConnectionRow).where(LmsConnectionRow.owner == owner, LmsConnectionRow.kind == kind)
            )
        if row is None:
            return None
        return row.base_url, self._fernet().decrypt(row.token_encrypted.encode()).decode()

    def connections(self, owner: str) -> list[tuple[str, str]]:
        """(kind, base URL) of the owner's connections (never the tokens)."""
        with self.session() as s:
            rows = s.scalars(select(LmsConnectionRow).where(LmsConnectionRow.owner == owner)).all()
            return [(r.kind, r.base_url) for r in rows]

    def delete_connection(self, owner: str, kind: str) -> bool:
        """Forget a token; whether there was one."""
        with self._tx() as s:
            done = s.execute(
                delete(LmsConnectionRow).where(LmsConnectionRow.owner == owner, LmsConnectionRow.kind == kind)
            )
            return bool(getattr(done, "rowcount", 0))
