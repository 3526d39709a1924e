"""LTI 1.3 storage: the tool's signing keys, platform registrations, logins in flight and resource links."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from schemas.lti import Registration
from service.errors import ConflictError, NotFoundError
from service.persistence.db import LtiKeyRow, LtiLinkRow, LtiPlatformRow, LtiScoreRow, LtiStateRow, as_utc, utcnow
from service.persistence.stores.base import StoreBase, new_id

STATE_TTL = timedelta(minutes=10)
"""How long an OIDC login may take between /lti/login and /lti/launch."""


@dataclass(frozen=True)
class Platform(Registration):
    """A registered LTI platform: its registration, its id and the owner its launches sign into."""

    id: str
    owner: str


@dataclass(frozen=True)
class Link:
    """A resource link: where its grades go (AGS line item) and its roster (NRPS)."""

    id: str
    platform_id: str
    deployment_id: str
    resource_link_id: str
    context_id: str
    title: str
    lineitem: str | None
    lineitems: str | None
    ags_scopes: list[str]
    memberships_url: str | None
    scheme_ref: str | None = None


def _platform(row: LtiPlatformRow) -> Platform:
    return Platform(
        issuer=row.issuer,
        client_id=row.client_id,
        auth_url=row.auth_url,
        token_url=row.token_url,
        jwks_url=row.jwks_url,
        deployment_ids=json.loads(row.deployment_ids),
        id=row.id,
        owner=row.owner,
    )


def _link(row: LtiLinkRow) -> Link:
    return Link(
        row.id,
        row.platform_id,
        row.deployment_id,
        row.resource_link_id,
        row.context_id,
        row.title,
        row.lineitem,
        row.lineitems,
        json.loads(row.ags_scopes),
        row.memberships_url,
        row.scheme_ref,
    )


class LtiStore(StoreBase):
    """Keys, registrations, one-time login states and links."""

    # -- keys
    def signing_keys(self) -> list[tuple[str, str, datetime | None]]:
        """(kid, private PEM, retired_at) for every key, newest first."""
        with self.session() as s:
            rows = s.scalars(select(LtiKeyRow).order_by(LtiKeyRow.created_at.desc())).all()
            return [(r.kid, r.private_pem, r.retired_at) for r in rows]

    def add_signing_key(self, kid: str, private_pem: str) -> None:
        """Store a new key and retire the ones before it (they stay in the JWKS until dropped)."""
        with self._tx() as s:
            for row in s.scalars(select(LtiKeyRow).where(LtiKeyRow.retired_at.is_(None))):
                row.retired_at = utcnow()
            s.add(LtiKeyRow(kid=kid, private_pem=private_pem))

    def drop_retired_keys(self, older_than: datetime) -> int:
        """Forget keys retired before ``older_than``; returns how many."""
        with self._tx() as s:
            rows = s.scalars(select(LtiKeyRow).where(LtiKeyRow.retired_at < older_than)).all()
            for row in rows:
                s.delete(row)
            return len(rows)

    # -- platforms
    def register_platform(self, owner: str, reg: Registration) -> Platform:
        """Register a platform (issuer + client id are unique across owners)."""
        with self._tx() as s:
            taken = s.scalar(
                select(LtiPlatformRow).where(
                    LtiPlatformRow.issuer == reg.issuer, LtiPlatformRow.client_id == reg.client_id
                )
            )
            if taken is not None:
                raise ConflictError(
                    f"platform {reg.issuer} with client id {reg.client_id} is already registered ({taken.id})"
                )
            row = LtiPlatformRow(
                id=new_id("plt"),
                owner=owner,
                issuer=reg.issuer,
                client_id=reg.client_id,
                auth_url=reg.auth_url,
                token_url=reg.token_url,
                jwks_url=reg.jwks_url,
                deployment_ids=json.dumps(list(reg.deployment_ids)),
            )
            s.add(row)
        return _platform(row)

    def platforms(self, owner: str) -> list[Platform]:
        """The owner's registrations."""
        with self.session() as s:
            return [_platform(r) for r in s.scalars(select(LtiPlatformRow).where(LtiPlatformRow.owner == owner))]

    def find_platform(self, issuer: str, client_id: str | None) -> Platform | None:
        """The registration a login names (``client_id`` may be absent when the issuer has one)."""
        with self.session() as s:
            query = select(LtiPlatformRow).where(LtiPlatformRow.issuer == issuer)
            if client_id:
                query = query.where(LtiPlatformRow.client_id == client_id)
            rows = s.scalars(query).all()
        return _platform(rows[0]) if len(rows) == 1 else None

    def platform(self, platform_id: str) -> Platform:
        """A registration by id."""
        with self.session() as s:
            row = s.get(LtiPlatformRow, platform_id)
        if row is None:
            raise NotFoundError(f"no LTI platform with id {platform_id!r}")
        return _platform(row)

    # -- logins in flight
    def new_state(self, platform_id: str) -> tuple[str, str]:
        """(state, nonce) for one OIDC login."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._tx() as s:
            s.execute(delete(LtiStateRow).where(LtiStateRow.created_at < utcnow() - 2 * STATE_TTL))
            s.add(LtiStateRow(state=state, nonce=nonce, platform_id=platform_id))
        return state, nonce

    def use_state(self, state: str) -> tuple[str, str] | None:
        """(platform id, nonce) for a state not used before and not expired; marks it used."""
        with self._tx() as s:
            row = s.get(LtiStateRow, state)
            if row is None or row.used_at is not None:
                return None
            row.used_at = utcnow()
            if utcnow() - as_utc(row.created_at) > STATE_TTL:
                return None
            return row.platform_id, row.nonce

    # -- links
    def save_link(
        self,
        platform_id: str,
        *,
        deployment_id: str,
        resource_link_id: str,
        context_id: str,
        title: str,
        lineitem: str | None,
        lineitems: str | None,
        ags_scopes: list[str],
        memberships_url: str | None,
        scheme_ref: str | None = None,
    ) -> Link:
        """Record (or refresh) a resource link from a launch."""
        with self._tx() as s:
            row = s.scalar(
                select(LtiLinkRow).where(
                    LtiLinkRow.platform_id == platform_id, LtiLinkRow.resource_link_id == resource_link_id
                )
            )
            if row is None:
                row = LtiLinkRow(id=new_id("lnk"), platform_id=platform_id, resource_link_id=resource_link_id)
                s.add(row)
            row.deployment_id, row.context_id, row.title = deployment_id, context_id, title
            row.lineitem, row.lineitems, row.memberships_url = lineitem, lineitems, memberships_url
            row.ags_scopes, row.updated_at = json.dumps(ags_scopes), utcnow()
            if scheme_ref:
                row.scheme_ref = scheme_ref
        return _link(row)

    def links_for(self, owner: str) -> list[Link]:
        """The links launched from the owner's platforms, most recent first."""
        with self.session() as s:
            query = (
                select(LtiLinkRow)
                .join(LtiPlatformRow, LtiPlatformRow.id == LtiLinkRow.platform_id)
                .where(LtiPlatformRow.owner == owner)
                .order_by(LtiLinkRow.updated_at.desc())
            )
            return [_link(r) for r in s.scalars(query)]

    def link(self, link_id: str) -> Link:
        """A link by id."""
        with self.session() as s:
            row = s.get(LtiLinkRow, link_id)
        if row is None:
            raise NotFoundError(f"no LTI link with id {link_id!r}")
        return _link(row)


@dataclass(frozen=True)
class QueuedScore:
    """A score row."""

    id: str
    link_id: str
    batch_id: str
    user_id: str
    marking_id: str
    score: dict[str, object]
    status: str
    attempts: int
    detail: str


def _queued(row: LtiScoreRow) -> QueuedScore:
    return QueuedScore(
        row.id, row.link_id, row.batch_id, row.user_id, row.marking_id, json.loads(row.score), row.status,
        row.attempts, row.detail,
    )  # fmt: skip


class ScoreQueueStore(StoreBase):
    """The durable queue of scores to send to LMS line items (one row per link and student)."""

    def enqueue_scores(self, link_id: str, batch_id: str, scores: list[tuple[str, str, dict[str, object]]]) -> None:
        """Queue (user id, marking id, score); a score already sent with the same timestamp stays as it is."""
        with self._tx() as s:
            for user_id, marking_id, score in scores:
                row = s.scalar(
                    select(LtiScoreRow).where(LtiScoreRow.link_id == link_id, LtiScoreRow.user_id == user_id)
                )
                body = json.dumps(score, sort_keys=True)
                if row is None:
                    row = LtiScoreRow(id=new_id("scr"), link_id=link_id, user_id=user_id, attempts=0)
                    s.add(row)
                elif row.score == body and row.status in ("sent", "already", "queued", "sending"):
                    row.batch_id = batch_id
                    continue
                row.batch_id, row.marking_id, row.score = batch_id, marking_id, body
                row.status, row.attempts, row.detail = "queued", 0, ""
                row.next_attempt_at = row.updated_at = utcnow()

    def claim_due_score(self, lease: timedelta) -> QueuedScore | None:
        """Take one queued score that is due (or one whose sender died), or None."""
        now = utcnow()
        with self._tx() as s:
            due = s.scalars(
                select(LtiScoreRow)
                .where(LtiScoreRow.status.in_(("queued", "sending")), LtiScoreRow.next_attempt_at <= now)
                .order_by(LtiScoreRow.next_attempt_at)
                .limit(1)
            ).first()
            if due is None:
                return None
            due.status, due.next_attempt_at = "sending", now + lease
            return _queued(due)

    def next_score_due(self) -> datetime | None:
        """When the next queued score is due (None: nothing queued)."""
        with self.session() as s:
            rows = s.scalars(
                select(LtiScoreRow.next_attempt_at)
                .where(LtiScoreRow.status.in_(("queued", "sending")))
                .order_by(LtiScoreRow.next_attempt_at)
                .limit(1)
            ).all()
        return rows[0] if rows else None

    def finish_score(self, score_id: str, status: str, *, detail: str = "", retry_at: datetime | None = None) -> None:
        """Record an attempt: sent / already / failed, or back in the queue until ``retry_at``."""
        with self._tx() as s:
            row = s.get(LtiScoreRow, score_id)
            if row is None:
                return
            row.attempts += 1
            row.status, row.detail, row.updated_at = status, detail[:500], utcnow()
            if retry_at is not None:
                row.next_attempt_at = retry_at

    def scores_for(self, link_id: str, batch_id: str) -> list[QueuedScore]:
        """The class set's score rows for a link."""
        with self.session() as s:
            rows = s.scalars(
                select(LtiScoreRow).where(LtiScoreRow.link_id == link_id, LtiScoreRow.batch_id == batch_id)
            ).all()
            return [_queued(r) for r in rows]
