"""Persistence operations (sync; the API calls them from worker threads)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from schemas.result import MarkingResult
from schemas.scheme import MarkScheme
from service.api.db import (
    BUILTIN_OWNER,
    ApiKeyRow,
    BatchItemRow,
    BatchRow,
    IdempotencyRow,
    MarkingRow,
    ReviewRow,
    SchemeRow,
    ServerSecretRow,
    utcnow,
)
from service.api.review import ReviewPublic
from service.errors import ConflictError, NotFoundError

_LATEST_TTL_S = 5.0
"""How long "the newest version of scheme X" is cached (other processes may register versions)."""


def new_id(prefix: str) -> str:
    """A short, unguessable, prefixed id."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def hash_key(key: str, pepper: bytes) -> str:
    """HMAC-SHA256 of an API key under this installation's secret pepper (kept in the database)."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StoredMarking:
    """A marking as read back."""

    id: str
    result: MarkingResult
    essay: str
    external_id: str | None
    batch_id: str | None
    owner: str | None = None


@dataclass(frozen=True)
class RegisteredScheme:
    """A scheme version as listed to a caller."""

    scheme: MarkScheme
    builtin: bool


@dataclass(frozen=True)
class ItemView:
    """A batch item's public state."""

    external_id: str
    status: str
    marking_id: str | None
    error_code: str | None
    error_message: str | None
    retryable: bool | None
    attempts: int


@dataclass(frozen=True)
class BatchView:
    """A batch with its progress."""

    id: str
    scheme_id: str
    scheme_version: str
    status: str
    counts: dict[str, int]
    webhook_status: str
    items: list[ItemView]
    owner: str | None = None


@dataclass(frozen=True)
class ClaimedItem:
    """Work a batch worker has claimed."""

    id: int
    batch_id: str
    external_id: str
    essay: str
    scheme_id: str
    scheme_version: str
    samples: int
    attempts: int
    owner: str | None = None
    claimer: str = ""
    """Who holds the lease."""
    tries: int = 1
    """Attempts in the current round (``attempts`` counts all of them)."""


class Store:
    """All database access for the API and the batch workers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite allows one writer at a time and makes the others sleep in its busy handler
        # (1-100 ms steps); queueing writers on an in-process lock is much faster. PostgreSQL
        # handles concurrent writers itself.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
        self._scheme_cache: dict[tuple[str, str, str], MarkScheme] = {}
        """(owner, id, version) -> the scheme that owner resolves it to."""
        self._latest_version: dict[tuple[str, str], tuple[str, float]] = {}
        self._pepper_value: bytes | None = None

    def session(self) -> Session:
        """A new session."""
        return self._sessions()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """A write transaction (serialised in-process on SQLite)."""
        with self._write_lock or nullcontext(), self.session() as s, s.begin():
            yield s

    def transaction(self) -> AbstractContextManager[Session]:
        """A write transaction for the per-resource stores that share this one's engine and lock."""
        return self._tx()

    def ping(self) -> None:
        """Raise if the database is unreachable."""
        with self.session() as s:
            s.execute(select(1))

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

    # API keys -----------------------------------------------------------------------------
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
        return row.id

    def list_api_keys(self) -> list[tuple[str, str, bool]]:
        """(id, name, revoked) for every key."""
        with self.session() as s:
            return [(r.id, r.name, r.revoked_at is not None) for r in s.scalars(select(ApiKeyRow))]

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke a key by id."""
        with self._tx() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            row.revoked_at = utcnow()

    # Schemes ------------------------------------------------------------------------------
    # A scheme belongs to the API key that registered it, or to BUILTIN_OWNER (shipped, read-only).
    # A caller resolves its own schemes and the built-ins, its own first; an id@version never
    # changes once registered, so a resolved scheme may be cached for good.

    def put_scheme(self, scheme: MarkScheme, *, owner: str) -> bool:
        """Register ``scheme`` for ``owner``; True if new, False if that id@version holds the same content.

        ``ConflictError`` if the id@version is registered with other content, or if the id is a
        built-in's (built-ins are read-only: the same content is accepted, anything else is not).
        """
        try:
            return self._put_scheme(scheme, owner)
        except IntegrityError:  # registered concurrently: now it exists, compare with it
            return self._put_scheme(scheme, owner)

    def _put_scheme(self, scheme: MarkScheme, owner: str) -> bool:
        with self._tx() as s:
            mine = s.scalar(
                select(SchemeRow.body).where(
                    SchemeRow.owner == owner, SchemeRow.scheme_id == scheme.id, SchemeRow.version == scheme.version
                )
            )
            if mine is not None:
                if MarkScheme.model_validate_json(mine) == scheme:
                    return False
                raise ConflictError(
                    f"scheme {scheme.ref} is already registered with other content, and a registered version "
                    "never changes; register the changed scheme under a new version"
                )
            if owner != BUILTIN_OWNER:
                shipped = s.execute(
                    select(SchemeRow.version, SchemeRow.body).where(
                        SchemeRow.owner == BUILTIN_OWNER, SchemeRow.scheme_id == scheme.id
                    )
                ).all()
                if any(v == scheme.version and MarkScheme.model_validate_json(b) == scheme for v, b in shipped):
                    return False
                if shipped:
                    raise ConflictError(
                        f"{scheme.id!r} is a built-in scheme, which is read-only; register your changed "
                        "scheme under an id of your own"
                    )
            s.add(SchemeRow(owner=owner, scheme_id=scheme.id, version=scheme.version, body=scheme.model_dump_json()))
            self._latest_version.pop((owner, scheme.id), None)
            return True

    def get_scheme(self, scheme_id: str, version: str | None = None, *, owner: str) -> MarkScheme | None:
        """``owner``'s scheme or a built-in, by id and version (newest by registration when no version is given)."""
        if version is None:
            latest = self._latest_version.get((owner, scheme_id))
            if latest and latest[1] > time.monotonic():
                version = latest[0]
        if version is not None and (owner, scheme_id, version) in self._scheme_cache:
            return self._scheme_cache[(owner, scheme_id, version)]
        with self.session() as s:
            query = select(SchemeRow).where(
                SchemeRow.scheme_id == scheme_id, SchemeRow.owner.in_((owner, BUILTIN_OWNER))
            )
            if version is not None:
                query = query.where(SchemeRow.version == version)
            own_first = case((SchemeRow.owner == owner, 0), else_=1)
            row = s.scalar(query.order_by(own_first, SchemeRow.pk.desc()).limit(1))
            if row is None:
                return None
            if version is None:
                self._latest_version[(owner, scheme_id)] = (row.version, time.monotonic() + _LATEST_TTL_S)
            key = (owner, row.scheme_id, row.version)
            if key not in self._scheme_cache:
                self._scheme_cache[key] = MarkScheme.model_validate_json(row.body)
            return self._scheme_cache[key]

    def list_schemes(self, *, owner: str) -> list[RegisteredScheme]:
        """Every scheme version ``owner`` can use: its own and the built-ins."""
        with self.session() as s:
            rows = s.scalars(
                select(SchemeRow)
                .where(SchemeRow.owner.in_((owner, BUILTIN_OWNER)))
                .order_by(SchemeRow.scheme_id, SchemeRow.pk)
            )
            return [
                RegisteredScheme(MarkScheme.model_validate_json(r.body), builtin=r.owner == BUILTIN_OWNER)
                for r in rows
            ]

    # Markings -----------------------------------------------------------------------------
    def save_marking(
        self, result: MarkingResult, essay: str, *, owner: str | None, external_id: str | None = None
    ) -> str:
        """Store a result; returns its id."""
        marking_id = new_id("mk")
        with self._tx() as s:
            s.add(
                MarkingRow(
                    id=marking_id,
                    scheme_id=result.provenance.scheme_id,
                    scheme_version=result.provenance.scheme_version,
                    essay=essay,
                    result=result.model_dump_json(),
                    owner=owner,
                    external_id=external_id,
                )
            )
        return marking_id

    def results_by_id(self, marking_ids: list[str]) -> dict[str, MarkingResult]:
        """Stored results for many markings in one query."""
        if not marking_ids:
            return {}
        with self.session() as s:
            rows = s.execute(select(MarkingRow.id, MarkingRow.result).where(MarkingRow.id.in_(marking_ids)))
            return {row.id: MarkingResult.model_validate_json(row.result) for row in rows}

    def get_marking(self, marking_id: str) -> StoredMarking:
        """A stored marking (``NotFoundError`` if absent)."""
        with self.session() as s:
            row = s.get(MarkingRow, marking_id)
        if row is None:
            raise NotFoundError(f"no marking with id {marking_id!r}")
        return StoredMarking(
            id=row.id,
            result=MarkingResult.model_validate_json(row.result),
            essay=row.essay,
            external_id=row.external_id,
            batch_id=row.batch_id,
            owner=row.owner,
        )

    # Reviews ------------------------------------------------------------------------------
    def save_review(self, review: ReviewPublic) -> None:
        """Store a teacher's approval (history is kept; the latest one counts)."""
        with self._tx() as s:
            s.add(
                ReviewRow(
                    marking_id=review.marking_id,
                    reviewer=review.reviewer,
                    body=review.model_dump_json(),
                    approved_at=review.approved_at,
                )
            )

    def latest_reviews(self, marking_ids: list[str]) -> dict[str, ReviewPublic]:
        """The latest review of each given marking that has one."""
        if not marking_ids:
            return {}
        with self.session() as s:
            rows = s.scalars(select(ReviewRow).where(ReviewRow.marking_id.in_(marking_ids)).order_by(ReviewRow.id))
            return {r.marking_id: ReviewPublic.model_validate_json(r.body) for r in rows}

    def reviewed_markings(self, owner: str | None, scheme_id: str | None) -> list[tuple[StoredMarking, ReviewPublic]]:
        """Approved markings (latest review each), optionally for one scheme, oldest first."""
        with self.session() as s:
            query = select(MarkingRow.id).join(ReviewRow, ReviewRow.marking_id == MarkingRow.id).distinct()
            if owner is not None:
                query = query.where(MarkingRow.owner == owner)
            if scheme_id is not None:
                query = query.where(MarkingRow.scheme_id == scheme_id)
            ids = sorted(s.scalars(query))
        reviews = self.latest_reviews(ids)
        return [(self.get_marking(i), reviews[i]) for i in ids]

    # Batches ------------------------------------------------------------------------------
    def create_batch(
        self,
        scheme: MarkScheme,
        essays: list[tuple[str, str]],
        *,
        samples: int,
        webhook_url: str | None,
        owner: str | None,
    ) -> str:
        """Queue a batch of (external id, essay) pairs."""
        batch_id = new_id("bt")
        with self._tx() as s:
            s.add(
                BatchRow(
                    id=batch_id,
                    scheme_id=scheme.id,
                    scheme_version=scheme.version,
                    samples=samples,
                    webhook_url=webhook_url,
                    webhook_status="pending" if webhook_url else "none",
                    owner=owner,
                )
            )
            s.flush()
            s.add_all(
                BatchItemRow(batch_id=batch_id, position=i, external_id=ext, essay=essay)
                for i, (ext, essay) in enumerate(essays)
            )
        return batch_id

    def get_batch(self, batch_id: str, *, with_items: bool = True) -> BatchView:
        """A batch's progress (``NotFoundError`` if absent)."""
        with self.session() as s:
            batch = s.get(BatchRow, batch_id)
            if batch is None:
                raise NotFoundError(f"no batch with id {batch_id!r}")
            if with_items:
                rows = s.execute(
                    select(
                        BatchItemRow.external_id,
                        BatchItemRow.status,
                        BatchItemRow.marking_id,
                        BatchItemRow.error_code,
                        BatchItemRow.error_message,
                        BatchItemRow.retryable,
                        BatchItemRow.attempts,
                    )
                    .where(BatchItemRow.batch_id == batch_id)
                    .order_by(BatchItemRow.position)
                )
                items = [ItemView(*r) for r in rows]
                counts = Counter(i.status for i in items)
            else:
                items = []
                counts = Counter(
                    dict(
                        s.execute(
                            select(BatchItemRow.status, func.count())
                            .where(BatchItemRow.batch_id == batch_id)
                            .group_by(BatchItemRow.status)
                        ).all()
                    )
                )
        full = {k: counts.get(k, 0) for k in ("queued", "running", "done", "failed")}
        status = (
            "done"
            if full["queued"] == full["running"] == 0
            else ("running" if full["done"] + full["failed"] + full["running"] else "queued")
        )
        if status == "done" and full["failed"]:
            status = "done_with_failures"
        return BatchView(
            id=batch.id,
            scheme_id=batch.scheme_id,
            scheme_version=batch.scheme_version,
            status=status,
            counts=full | {"total": sum(full.values())},
            webhook_status=batch.webhook_status,
            items=items if with_items else [],
            owner=batch.owner,
        )

    def retry_failed(self, batch_id: str) -> int:
        """Re-queue a batch's retryable failed items (each gets a fresh round of tries)."""
        self.get_batch(batch_id, with_items=False)
        with self._tx() as s:
            result = s.execute(
                update(BatchItemRow)
                .where(
                    BatchItemRow.batch_id == batch_id, BatchItemRow.status == "failed", BatchItemRow.retryable.is_(True)
                )
                .values(
                    status="queued",
                    error_code=None,
                    error_message=None,
                    tries=0,
                    not_before=None,
                    published_at=None,
                    updated_at=utcnow(),
                )
            )
            if result.rowcount:  # type: ignore[attr-defined]
                s.execute(update(BatchRow).where(BatchRow.id == batch_id).values(finished_at=None))
            return int(result.rowcount)  # type: ignore[attr-defined]

    # Batch queue: leases -------------------------------------------------------------------
    # A worker claims an item by setting claimed_by and a lease expiry; it renews the lease while
    # marking. Only the lease holder may record the outcome. An item whose lease has expired (its
    # worker died, or lost the database for longer than the lease) may be claimed by anyone, so a
    # process starting up never touches items other live processes are marking.

    @staticmethod
    def _claimable(now: datetime) -> ColumnElement[bool]:
        return or_(
            and_(
                BatchItemRow.status == "queued",
                or_(BatchItemRow.not_before.is_(None), BatchItemRow.not_before <= now),
            ),
            and_(BatchItemRow.status == "running", BatchItemRow.lease_expires_at < now),
        )

    def claim_item(self, claimer: str, *, lease_s: float, item_id: int | None = None) -> ClaimedItem | None:
        """Lease one claimable item (the given one, or the oldest) to ``claimer``; None if there is none.

        Claimable: queued and past its backoff, or running under an expired lease.
        """
        while True:
            now = utcnow()
            with self._tx() as s:
                if item_id is None:
                    candidate = s.scalar(
                        select(BatchItemRow.id).where(self._claimable(now)).order_by(BatchItemRow.id).limit(1)
                    )
                    if candidate is None:
                        return None
                else:
                    candidate = item_id
                claimed = s.execute(
                    update(BatchItemRow)
                    .where(BatchItemRow.id == candidate, self._claimable(now))
                    .values(
                        status="running",
                        claimed_by=claimer,
                        lease_expires_at=now + timedelta(seconds=lease_s),
                        not_before=None,
                        attempts=BatchItemRow.attempts + 1,
                        tries=BatchItemRow.tries + 1,
                        updated_at=now,
                    )
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    if item_id is not None:
                        return None  # done, failed, not yet due, or leased to a live worker
                    continue  # another worker (or process) took it
                row = s.execute(
                    select(
                        BatchItemRow.batch_id,
                        BatchItemRow.external_id,
                        BatchItemRow.essay,
                        BatchItemRow.attempts,
                        BatchItemRow.tries,
                        BatchRow.scheme_id,
                        BatchRow.scheme_version,
                        BatchRow.samples,
                        BatchRow.owner,
                    )
                    .join(BatchRow, BatchRow.id == BatchItemRow.batch_id)
                    .where(BatchItemRow.id == candidate)
                ).one()
                return ClaimedItem(
                    id=candidate,
                    batch_id=row.batch_id,
                    external_id=row.external_id,
                    essay=row.essay,
                    scheme_id=row.scheme_id,
                    scheme_version=row.scheme_version,
                    samples=row.samples,
                    attempts=row.attempts,
                    owner=row.owner,
                    claimer=claimer,
                    tries=row.tries,
                )

    def item_state(self, item_id: int) -> tuple[str, datetime | None, datetime | None] | None:
        """(status, lease expiry, backoff end) of an item, or None if it does not exist."""
        with self.session() as s:
            row = s.execute(
                select(BatchItemRow.status, BatchItemRow.lease_expires_at, BatchItemRow.not_before).where(
                    BatchItemRow.id == item_id
                )
            ).one_or_none()
        return None if row is None else (row.status, row.lease_expires_at, row.not_before)

    def _held(self, item: ClaimedItem) -> ColumnElement[bool]:
        return and_(
            BatchItemRow.id == item.id, BatchItemRow.status == "running", BatchItemRow.claimed_by == item.claimer
        )

    def renew_lease(self, item: ClaimedItem, *, lease_s: float) -> bool:
        """Extend the lease; False if it is no longer ours (it expired and was taken over)."""
        now = utcnow()
        with self._tx() as s:
            renewed = s.execute(
                update(BatchItemRow)
                .where(self._held(item))
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            )
            return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]

    def complete_item(self, item: ClaimedItem, result: MarkingResult, *, owner: str | None) -> str | None:
        """Store the result and mark the item done in one transaction; None if it was not ours.

        The unique index on markings (batch_id, external_id) makes a second result for the same
        item impossible, whatever a broker redelivers or a lease race allows.
        """
        marking_id = new_id("mk")
        try:
            with self._tx() as s:
                done = s.execute(
                    update(BatchItemRow)
                    .where(self._held(item))
                    .values(
                        status="done",
                        marking_id=marking_id,
                        error_code=None,
                        error_message=None,
                        retryable=None,
                        claimed_by=None,
                        lease_expires_at=None,
                        updated_at=utcnow(),
                    )
                )
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    s.rollback()
                    return None
                s.add(
                    MarkingRow(
                        id=marking_id,
                        scheme_id=item.scheme_id,
                        scheme_version=item.scheme_version,
                        essay=item.essay,
                        result=result.model_dump_json(),
                        external_id=item.external_id,
                        batch_id=item.batch_id,
                        owner=owner,
                    )
                )
        except IntegrityError:
            return None  # a result for this item is already stored
        return marking_id

    def fail_item(self, item: ClaimedItem, *, code: str, message: str, retryable: bool) -> bool:
        """Record a final failure (never a score); False if the item was not ours."""
        with self._tx() as s:
            failed = s.execute(
                update(BatchItemRow)
                .where(self._held(item))
                .values(
                    status="failed",
                    error_code=code,
                    error_message=message,
                    retryable=retryable,
                    claimed_by=None,
                    lease_expires_at=None,
                    updated_at=utcnow(),
                )
            )
            return bool(failed.rowcount == 1)  # type: ignore[attr-defined]

    def defer_item(self, item: ClaimedItem, *, delay_s: float, code: str, message: str) -> bool:
        """Back to the queue after a retryable error, not to be claimed for ``delay_s``."""
        now = utcnow()
        with self._tx() as s:
            deferred = s.execute(
                update(BatchItemRow)
                .where(self._held(item))
                .values(
                    status="queued",
                    error_code=code,
                    error_message=message,
                    retryable=True,
                    claimed_by=None,
                    lease_expires_at=None,
                    not_before=now + timedelta(seconds=delay_s),
                    updated_at=now,
                )
            )
            return bool(deferred.rowcount == 1)  # type: ignore[attr-defined]

    def release_item(self, item: ClaimedItem) -> bool:
        """Give an unfinished item back at shutdown (the try does not count)."""
        with self._tx() as s:
            released = s.execute(
                update(BatchItemRow)
                .where(self._held(item))
                .values(
                    status="queued",
                    claimed_by=None,
                    lease_expires_at=None,
                    attempts=BatchItemRow.attempts - 1,
                    tries=BatchItemRow.tries - 1,
                    published_at=None,
                    updated_at=utcnow(),
                )
            )
            return bool(released.rowcount == 1)  # type: ignore[attr-defined]

    # Batch queue: broker outbox (Celery mode) --------------------------------------------------
    def take_unpublished(self, limit: int = 500) -> list[int]:
        """Mark up to ``limit`` queued items that have no task at the broker as published; their ids.

        The conditional update makes each item's first publication happen in one process only.
        """
        with self._tx() as s:
            ids = list(
                s.scalars(
                    select(BatchItemRow.id)
                    .where(BatchItemRow.status == "queued", BatchItemRow.published_at.is_(None))
                    .order_by(BatchItemRow.id)
                    .limit(limit)
                )
            )
            if not ids:
                return []
            taken = s.scalars(
                update(BatchItemRow)
                .where(BatchItemRow.id.in_(ids), BatchItemRow.published_at.is_(None))
                .values(published_at=utcnow())
                .returning(BatchItemRow.id)
            )
            return sorted(taken)

    def unpublish(self, item_ids: list[int]) -> None:
        """The broker refused these: publish them again later."""
        if item_ids:
            with self._tx() as s:
                s.execute(update(BatchItemRow).where(BatchItemRow.id.in_(item_ids)).values(published_at=None))

    def expired_leases(self, limit: int = 500) -> list[int]:
        """Running items whose lease has expired: their worker died, and they need a new task."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(BatchItemRow.id)
                    .where(BatchItemRow.status == "running", BatchItemRow.lease_expires_at < utcnow())
                    .order_by(BatchItemRow.id)
                    .limit(limit)
                )
            )

    def queued_published_before(self, cutoff: datetime, limit: int = 500) -> list[int]:
        """Queued items untouched since before ``cutoff`` and due (candidates when the broker lost its queue)."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(BatchItemRow.id)
                    .where(
                        BatchItemRow.status == "queued",
                        BatchItemRow.published_at < cutoff,
                        BatchItemRow.updated_at < cutoff,
                        or_(BatchItemRow.not_before.is_(None), BatchItemRow.not_before < cutoff),
                    )
                    .order_by(BatchItemRow.id)
                    .limit(limit)
                )
            )

    def item_counts(self) -> dict[str, int]:
        """Batch items in each state, over all batches."""
        with self.session() as s:
            rows = s.execute(select(BatchItemRow.status, func.count()).group_by(BatchItemRow.status)).all()
        found = {str(status): int(n) for status, n in rows}
        return {k: found.get(k, 0) for k in ("queued", "running", "done", "failed")}

    def batch_owner(self, batch_id: str) -> str | None:
        """Who created the batch."""
        with self.session() as s:
            batch = s.get(BatchRow, batch_id)
            return batch.owner if batch else None

    def finish_batch_if_complete(self, batch_id: str) -> str | None:
        """Mark a complete batch finished once; returns its webhook URL if this call should deliver it."""
        with self._tx() as s:
            open_items = s.scalar(
                select(func.count())
                .select_from(BatchItemRow)
                .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status.in_(("queued", "running")))
            )
            if open_items:
                return None
            claimed = s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.finished_at.is_(None))
                .values(finished_at=utcnow())
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            batch = s.get(BatchRow, batch_id)
            return batch.webhook_url if batch and batch.webhook_status in ("pending", "failed") else None

    def set_webhook_status(self, batch_id: str, status: str) -> None:
        """Record webhook delivery state."""
        with self._tx() as s:
            s.execute(update(BatchRow).where(BatchRow.id == batch_id).values(webhook_status=status))

    def pending_webhooks(self) -> list[tuple[str, str]]:
        """(batch id, URL) of finished batches whose webhook was never delivered (e.g. the process died)."""
        with self.session() as s:
            rows = s.execute(
                select(BatchRow.id, BatchRow.webhook_url).where(
                    BatchRow.finished_at.is_not(None), BatchRow.webhook_status == "pending"
                )
            )
            return [(batch_id, url) for batch_id, url in rows if url]

    # Idempotency --------------------------------------------------------------------------
    # A key is held under a lease while its first request runs (renewed by that request). A request
    # that dies without finishing or releasing stops renewing; once its lease runs out, a retry with
    # the same key and body takes the key over. Only the holder may store the response or release it.

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
