"""SQLAlchemy tables and a tiny versioned migration runner (SQLite by default, Postgres by URL)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

if TYPE_CHECKING:
    from service.schemes import SchemeLibrary


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives back naive datetimes; they were written in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base for every table."""


class ApiKeyRow(Base):
    """An API key; only its hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acts_as: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """A sign-in session (an LTI instructor launch) acts as the owner of the platform registration."""
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


BUILTIN_OWNER = "builtin"
"""Owner of the schemes shipped with draftmark: read-only, and visible to every caller (key ids start ``key_``)."""

LOCAL_OWNER = "local"
"""The principal when auth is disabled (and the command line's); also owns what predates ownership."""


class SchemeRow(Base):
    """A registered mark scheme version, owned by the API key that registered it (or built in).

    An owner's id@version never changes once registered; another owner's same id@version is theirs.
    """

    __tablename__ = "schemes"
    __table_args__ = (UniqueConstraint("owner", "scheme_id", "version"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(32))
    scheme_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MarkingRow(Base):
    """A stored marking result with the essay it was made from."""

    __tablename__ = "markings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scheme_id: Mapped[str] = mapped_column(String(64), index=True)
    scheme_version: Mapped[str] = mapped_column(String(32))
    essay: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchRow(Base):
    """A batch of essays marked in the background."""

    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scheme_id: Mapped[str] = mapped_column(String(64))
    scheme_version: Mapped[str] = mapped_column(String(32))
    samples: Mapped[int] = mapped_column(Integer, default=1)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    webhook_status: Mapped[str] = mapped_column(String(16), default="none")
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    """The teacher's name for the class set (e.g. "10B History – Stalin essay")."""
    skipped: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Files sent with the set that held no essay: a JSON list of ``schemas.class_set.SkippedFile``."""
    skipped_dismissed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the teacher dismissed the skipped files' notice (the list is kept)."""


class BatchItemRow(Base):
    """One essay of a batch. Status: queued -> running -> done | failed."""

    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(200))
    essay: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    marking_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    retryable: Mapped[bool | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Lease: who is marking the item and until when; an expired lease may be taken over.
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """A retry's backoff: the item is not claimed before this."""
    tries: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts since the item was last queued by a person (``attempts`` counts them all)."""
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When a task for the item was last sent to the broker (Celery mode only)."""


class IdempotencyRow(Base):
    """The first response to an Idempotency-Key, replayed for identical retries."""

    __tablename__ = "idempotency"
    principal: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    route: Mapped[str] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # While the first request runs: who runs it and until when. A request that died (its process
    # crashed) stops renewing, and a retry with the same key and body takes the key over after this.
    holder: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReviewRow(Base):
    """A teacher's approved marks for a marking; the model's draft is kept unchanged beside it."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    marking_id: Mapped[str] = mapped_column(ForeignKey("markings.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ExemplarRow(Base):
    """A marked script for one scheme version, owned like a marking: calibration learns from these."""

    __tablename__ = "exemplars"
    __table_args__ = (UniqueConstraint("owner", "scheme_id", "scheme_version", "essay_sha256"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    scheme_id: Mapped[str] = mapped_column(String(64))
    scheme_version: Mapped[str] = mapped_column(String(32))
    essay: Mapped[str] = mapped_column(Text)
    essay_sha256: Mapped[str] = mapped_column(String(64))
    marks: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    marking_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    llm_marks: Mapped[str | None] = mapped_column(Text, nullable=True)
    llm_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    basis: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """How the teacher's marks were given (``schemas.calibration.Basis``); NULL: imported."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CalibratorRow(Base):
    """A fitted calibrator (every fit is kept: results name the version that marked them)."""

    __tablename__ = "calibrators"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(32), index=True)
    scheme_id: Mapped[str] = mapped_column(String(64))
    scheme_version: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServerSecretRow(Base):
    """Per-installation secrets generated at first use (e.g. the API-key HMAC pepper)."""

    __tablename__ = "server_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class LtiKeyRow(Base):
    """One of the tool's own RSA signing keys (JWKS at /lti/jwks); retired keys stay published a while."""

    __tablename__ = "lti_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LtiPlatformRow(Base):
    """An LTI 1.3 platform registration (issuer + client id), owned by the principal that registered it."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_url: Mapped[str] = mapped_column(String(1000))
    token_url: Mapped[str] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    deployment_ids: Mapped[str] = mapped_column(Text)  # JSON list
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiStateRow(Base):
    """An OIDC login in flight: its state and nonce, used once, expiring."""

    __tablename__ = "lti_states"
    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LtiLinkRow(Base):
    """A resource link seen in a launch: its course, the AGS line item and roster URLs the platform gave."""

    __tablename__ = "lti_links"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), index=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    lineitem: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    lineitems: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    ags_scopes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    memberships_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    scheme_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)  # from a deep link's custom claim
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiScoreRow(Base):
    """One student's score on its way to an LMS line item: queued, sent (or already there), or failed."""

    __tablename__ = "lti_scores"
    __table_args__ = (UniqueConstraint("link_id", "user_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    link_id: Mapped[str] = mapped_column(String(40), index=True)
    batch_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    marking_id: Mapped[str] = mapped_column(String(32))
    score: Mapped[str] = mapped_column(Text)  # the AGS Score JSON, exactly as sent
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | sending | sent | already | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LmsConnectionRow(Base):
    """An owner's own LMS API token (Canvas access token, Moodle web-service token), encrypted at rest."""

    __tablename__ = "lms_connections"
    __table_args__ = (UniqueConstraint("owner", "kind"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # canvas | moodle
    base_url: Mapped[str] = mapped_column(String(1000))
    token_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserRow(Base):
    """A teacher who signs in with email and password; owns what their sessions and keys create."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PasswordTokenRow(Base):
    """A one-time link to set a password (made by ``draftmark users add``); only its hash is stored."""

    __tablename__ = "password_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CommentBankRow(Base):
    """A comment a teacher saved for one scheme, to insert again while reviewing other scripts."""

    __tablename__ = "comment_bank"
    # The text's hash, not the text, in the unique index: a 1,000-character comment can pass
    # PostgreSQL's limit on a btree index entry.
    __table_args__ = (UniqueConstraint("owner", "scheme_id", "text_sha256"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    scheme_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


_V1_TABLES = ("api_keys", "schemes", "markings", "batches", "batch_items", "idempotency")


def _v1(conn: Connection) -> None:
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[name] for name in _V1_TABLES])


def _v2(conn: Connection) -> None:
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["reviews"]])


def _v3(conn: Connection) -> None:
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_batch_items_status_id ON batch_items (status, id)"))


def _v4(conn: Connection) -> None:
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["server_secrets"]])


def _add_missing_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """``ALTER TABLE table ADD COLUMN name ddl`` for each column the table lacks (a new database may have them)."""
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, ddl in columns.items():
        if name not in present:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))


_V5_BATCH_ITEM_COLUMNS = {
    "claimed_by": "VARCHAR(64)",
    "lease_expires_at": "TIMESTAMP WITH TIME ZONE",
    "not_before": "TIMESTAMP WITH TIME ZONE",
    "tries": "INTEGER NOT NULL DEFAULT 0",
    "published_at": "TIMESTAMP WITH TIME ZONE",
}


def _v5(conn: Connection) -> None:
    """Batch leases and retries; at most one stored result per batch item, enforced by the database."""
    _add_missing_columns(conn, "batch_items", _V5_BATCH_ITEM_COLUMNS)  # _v1 on a new database has them
    # (batch_id, external_id) identifies a batch item; markings made outside a batch have batch_id NULL,
    # which never collides in a unique index on SQLite or PostgreSQL.
    conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS ux_markings_batch_item ON markings (batch_id, external_id)"))
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS ix_batch_items_status_lease ON batch_items (status, lease_expires_at)")
    )


def _v6(conn: Connection) -> None:
    """Exemplars (a teacher's marked scripts) and the calibrators fitted on them."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[n] for n in ("exemplars", "calibrators")])


def _v7(conn: Connection) -> None:
    """Schemes belong to an owner, unique per (owner, id, version).

    SQLite cannot drop the old (id, version) constraint, so the table is rebuilt on both backends:
    moved aside, created anew, copied, dropped (re-entrant if a previous run stopped half-way). A
    database that ``_v1`` created today already has the new table and skips the rebuild. Each old row
    goes to: the built-ins if it is a shipped id@version with the shipped content; otherwise to every
    owner whose markings, batches, exemplars or calibrators used it (so their results stay reviewable),
    or to ``LOCAL_OWNER`` when nothing used it (a caller who registered it registers it again).
    """
    names = set(inspect(conn).get_table_names())
    if "schemes" in names and "owner" not in {c["name"] for c in inspect(conn).get_columns("schemes")}:
        conn.execute(text("DROP INDEX IF EXISTS ix_schemes_scheme_id"))
        conn.execute(text("ALTER TABLE schemes RENAME TO schemes_v6"))
        if conn.dialect.name == "postgresql":  # free the names the new table's key and sequence will take
            conn.execute(text("ALTER INDEX IF EXISTS schemes_pkey RENAME TO schemes_v6_pkey"))
            conn.execute(text("ALTER SEQUENCE IF EXISTS schemes_pk_seq RENAME TO schemes_v6_pk_seq"))
        names = (names - {"schemes"}) | {"schemes_v6"}
    if "schemes" not in names:
        Base.metadata.create_all(conn, tables=[Base.metadata.tables["schemes"]])
    if "schemes_v6" in names:
        from service.schemes import SchemeLibrary

        library = SchemeLibrary()
        for row in conn.execute(text("SELECT scheme_id, version, body, created_at FROM schemes_v6 ORDER BY pk")):
            for owner in _v7_owners(conn, library, row.scheme_id, row.version, row.body):
                conn.execute(
                    text(
                        "INSERT INTO schemes (owner, scheme_id, version, body, created_at) "
                        "VALUES (:owner, :scheme_id, :version, :body, :created_at)"
                    ),
                    {"owner": owner, **row._asdict()},
                )
        conn.execute(text("DROP TABLE schemes_v6"))


def _v7_owners(conn: Connection, library: SchemeLibrary, scheme_id: str, version: str, body: str) -> list[str]:
    """Who an old scheme row belongs to (see ``_v7``), less owners a stopped run already copied it to."""
    from pydantic import ValidationError

    from schemas.scheme import MarkScheme
    from service.errors import NotFoundError

    owners: set[str] = set()
    try:
        if MarkScheme.model_validate_json(body) == library.get(scheme_id, version):
            owners = {BUILTIN_OWNER}
    except (NotFoundError, ValidationError):
        pass  # not shipped, or not valid under today's rules: someone's own scheme
    if not owners:
        users = conn.execute(
            text(
                " UNION ".join(
                    f"SELECT owner FROM {table} WHERE scheme_id = :i AND scheme_version = :v"
                    for table in ("markings", "batches", "exemplars", "calibrators")
                )
            ),
            {"i": scheme_id, "v": version},
        ).scalars()
        owners = {owner or LOCAL_OWNER for owner in users} or {LOCAL_OWNER}
    copied = conn.execute(
        text("SELECT owner FROM schemes WHERE scheme_id = :i AND version = :v"), {"i": scheme_id, "v": version}
    ).scalars()
    return sorted(owners - set(copied))


def _v8(conn: Connection) -> None:
    """Idempotency keys get a lease, so a key whose request died can be used again once it runs out."""
    _add_missing_columns(conn, "idempotency", {"holder": "VARCHAR(32)", "lease_expires_at": "TIMESTAMP WITH TIME ZONE"})


def _v9(conn: Connection) -> None:
    """Exemplars record how their marks were given (blind, with the draft in view, or the draft left unchanged)."""
    _add_missing_columns(conn, "exemplars", {"basis": "VARCHAR(16)"})


def _v10(conn: Connection) -> None:
    """LTI 1.3 (keys, registrations, logins, links, queued scores), teachers and sign-in sessions, LMS tokens."""
    names = (
        "lti_keys",
        "lti_platforms",
        "lti_states",
        "lti_links",
        "lti_scores",
        "lms_connections",
        "users",
        "password_tokens",
    )
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[n] for n in names])
    for table, columns in {
        "api_keys": {"acts_as": "VARCHAR(64)", "expires_at": "TIMESTAMP WITH TIME ZONE"},
        "reviews": {"released_at": "TIMESTAMP WITH TIME ZONE", "released_by": "VARCHAR(200)"},
    }.items():
        _add_missing_columns(conn, table, columns)


_V11_BATCH_COLUMNS = {
    "name": "VARCHAR(120)",
    "skipped": "TEXT",
    "skipped_dismissed_at": "TIMESTAMP WITH TIME ZONE",
}


def _v11(conn: Connection) -> None:
    """Class sets get the teacher's name for them and keep the files that held no essay until dismissed."""
    _add_missing_columns(conn, "batches", _V11_BATCH_COLUMNS)  # _v1 on a new database has them


def _v12(conn: Connection) -> None:
    """A comment bank per owner and scheme."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["comment_bank"]])


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10, _v11, _v12]
"""Append-only: migration N brings the schema from version N-1 to N."""


_MIGRATION_LOCK = 0x6472616674  # "draft": any fixed key shared by every draftmark process


def migrate(engine: Engine) -> int:
    """Apply pending migrations; returns the schema version.

    Processes that start together (API replicas, workers) take turns, so none sees a half-made
    schema or fails on a table another is creating: on PostgreSQL a transaction-scoped advisory
    lock serialises them; on SQLite the migration runs in a ``BEGIN IMMEDIATE`` transaction, which
    takes the database's write lock before the version is read (pysqlite would otherwise run the
    DDL outside any transaction, and two processes would both see version 0).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits up to the busy timeout for another migrator
        conn.execute(text("CREATE TABLE IF NOT EXISTS draftmark_schema (version INTEGER NOT NULL)"))
        current = conn.execute(text("SELECT MAX(version) FROM draftmark_schema")).scalar() or 0
        for number, step in enumerate(MIGRATIONS, start=1):
            if number > current:
                step(conn)
                conn.execute(text("INSERT INTO draftmark_schema (version) VALUES (:v)"), {"v": number})
    return len(MIGRATIONS)


_SQLITE_BUSY_S = 30.0


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (once per file: the mode persists), waiting out other processes.

    Switching a fresh file to WAL needs a lock that SQLite does not wait for (the busy timeout is
    not applied to it), so a process that starts while another is migrating would fail with
    "database is locked"; it retries for as long as the busy timeout instead.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_engine(url: str) -> Engine:
    """An engine with sane per-backend settings (SQLite: WAL, foreign keys, busy timeout)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_S}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # hide_parameters: a driver error's message (logged, or raised to a handler) would otherwise quote
    # the statement's parameters, and those are essays, names and model output.
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)
