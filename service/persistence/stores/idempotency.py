"""Idempotency keys: held under a lease while their first request runs, then replayed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, update
from sqlalchemy.exc import IntegrityError

from service.persistence.db import IdempotencyRow, utcnow
from service.persistence.stores.base import StoreBase


class IdempotencyStore(StoreBase):
    """Idempotency records.

    A key is held under a lease while its first request runs (renewed by that request). A request
    that dies without finishing or releasing stops renewing; once its lease runs out, a retry with
    the same key and body takes the key over. Only the holder may store the response or release it.
    """

    def idempotency_begin(
        self, principal: str, key: str, route: str, body_hash: str, *, lease_s: float, holder: str
    ) -> IdempotencyRow | None:
        """Reserve a key for ``holder``; None if it is now theirs, else the record that holds it.

        A key whose request never finished and whose lease has run out is taken over, if this is the
        same request (same route and body).
        """
        now = utcnow()
        lease = now + timedelta(seconds=lease_s)
        try:
            with self._tx() as s:
                s.add(
                    IdempotencyRow(
                        principal=principal,
                        key=key,
                        route=route,
                        body_hash=body_hash,
                        holder=holder,
                        lease_expires_at=lease,
                    )
                )
            return None
        except IntegrityError:
            pass  # seen before: in progress, finished, or left by a request that died
        with self._tx() as s:
            taken = s.execute(
                update(IdempotencyRow)
                .where(
                    IdempotencyRow.principal == principal,
                    IdempotencyRow.key == key,
                    IdempotencyRow.route == route,
                    IdempotencyRow.body_hash == body_hash,
                    IdempotencyRow.status_code.is_(None),
                    # no lease: left by a version that had none, by a request that died
                    or_(IdempotencyRow.lease_expires_at.is_(None), IdempotencyRow.lease_expires_at < now),
                )
                .values(holder=holder, lease_expires_at=lease)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return None
        with self.session() as s:
            existing = s.get(IdempotencyRow, (principal, key))
        if existing is None:  # raced with a failed request that released the key
            return self.idempotency_begin(principal, key, route, body_hash, lease_s=lease_s, holder=holder)
        return existing

    def _holds(self, principal: str, key: str, holder: str) -> ColumnElement[bool]:
        return and_(
            IdempotencyRow.principal == principal,
            IdempotencyRow.key == key,
            IdempotencyRow.holder == holder,
            IdempotencyRow.status_code.is_(None),
        )

    def idempotency_renew(self, principal: str, key: str, holder: str, *, lease_s: float) -> bool:
        """Extend the lease; False if the key is no longer ``holder``'s."""
        with self._tx() as s:
            renewed = s.execute(
                update(IdempotencyRow)
                .where(self._holds(principal, key, holder))
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            )
            return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]

    def idempotency_finish(self, principal: str, key: str, holder: str, status_code: int, response: str) -> bool:
        """Store the response to replay; False if the key was taken over (the lease ran out)."""
        with self._tx() as s:
            finished = s.execute(
                update(IdempotencyRow)
                .where(self._holds(principal, key, holder))
                .values(status_code=status_code, response=response, holder=None, lease_expires_at=None)
            )
            return bool(finished.rowcount == 1)  # type: ignore[attr-defined]

    def idempotency_release(self, principal: str, key: str, holder: str) -> None:
        """Forget a key whose request failed on our side, so the client may retry it."""
        with self._tx() as s:
            s.execute(delete(IdempotencyRow).where(self._holds(principal, key, holder)))
