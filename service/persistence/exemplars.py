"""Exemplars (a teacher's marked scripts per scheme version) and the calibrators fitted on them."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from schemas.calibration import COUNTED, Basis, Calibrator
from schemas.scheme import MarkScheme
from service.calibration.fit import MIN_SCRIPTS, Script, fit_calibrator
from service.calibration.importing import MarkedScript
from service.errors import NotFoundError
from service.persistence.db import CalibratorRow, ExemplarRow, utcnow
from service.persistence.stores import Store, new_id

_UNIQUE = ["owner", "scheme_id", "scheme_version", "essay_sha256"]
MAX_EXEMPLARS_FITTED = 500
"""The newest this many exemplars are used for a fit (fitting stays a matter of seconds)."""
REFIT_EVERY = 10
"""Approvals refit the calibration once this many new counted scripts have come in since the last fit
(or when the teacher asks): marks do not shift script by script while a teacher works through a class."""


_PARSED_FITS: dict[tuple[Any, ...], Calibrator] = {}
"""(owner, scheme id, scheme version, row pk, fit version, fitted at) -> the parsed fit (``current``)."""
_PARSED_FITS_KEPT = 32
_PARSED_FITS_LOCK = threading.Lock()


class ExemplarCounts(BaseModel):
    """How many marked scripts there are, how many calibration counts, and how many came since the last fit."""

    total: int
    counted: int
    new_since_fit: int
    fitted: bool = False
    """Whether there is a fit at all (without one, every counted script is new)."""


def _latest_fit(owner: str, scheme_id: str, version: str, column: Any) -> Any:
    """``column`` of the owner's latest fit for the scheme version."""
    return (
        select(column)
        .where(
            CalibratorRow.owner == owner, CalibratorRow.scheme_id == scheme_id, CalibratorRow.scheme_version == version
        )
        .order_by(CalibratorRow.fitted_at.desc())
        .limit(1)
    )


def _counted(query: Any) -> Any:
    return query.where(or_(ExemplarRow.basis.is_(None), ExemplarRow.basis.in_(sorted(COUNTED))))


class ExemplarView(BaseModel):
    """An exemplar as listed (no essay text beyond a preview)."""

    id: str
    external_id: str | None
    source: str
    marks: dict[str, int]
    marking_id: str | None
    words: int
    preview: str
    created_at: datetime
    basis: Basis
    counted: bool


def _drop_fits(s: Session, owner: str, scheme_id: str, version: str) -> None:
    """Delete the owner's fits for a scheme version (each holds its exemplars' text)."""
    s.execute(
        delete(CalibratorRow).where(
            CalibratorRow.owner == owner,
            CalibratorRow.scheme_id == scheme_id,
            CalibratorRow.scheme_version == version,
        )
    )


def essay_digest(essay: str) -> str:
    """Identity of an essay's text (one exemplar per owner, scheme version and text)."""
    return hashlib.sha256(essay.encode("utf-8")).hexdigest()


class ExemplarStore:
    """Exemplar and calibrator persistence, sharing the main store's engine and write lock."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self,
        owner: str,
        scheme: MarkScheme,
        scripts: list[MarkedScript],
        *,
        source: str,
        marking_id: str | None = None,
        llm_marks: dict[str, int] | None = None,
        llm_model: str | None = None,
        basis: Basis = "imported",
    ) -> tuple[int, int]:
        """Insert or update (same text → new marks); returns (added, updated)."""
        added = updated = 0
        with self._store.transaction() as s:
            for script in scripts:
                if self.upsert(
                    s,
                    owner,
                    scheme,
                    script,
                    source=source,
                    marking_id=marking_id,
                    llm_marks=llm_marks,
                    llm_model=llm_model,
                    basis=basis,
                ):
                    added += 1
                else:
                    updated += 1
        return added, updated

    @staticmethod
    def upsert(
        s: Session,
        owner: str,
        scheme: MarkScheme,
        script: MarkedScript,
        *,
        source: str,
        marking_id: str | None = None,
        llm_marks: dict[str, int] | None = None,
        llm_model: str | None = None,
        basis: Basis = "imported",
    ) -> bool:
        """One script into the caller's transaction: True if added, False if an existing one was updated.

        Two writers adding the same text at once (a double-clicked approval, the same file imported
        twice) used to both find no row and both insert; on PostgreSQL the second hit the unique key
        (a 500 after the approval was saved). ``INSERT … ON CONFLICT DO NOTHING`` waits for the first
        writer instead, and the second then updates the row it wrote: both succeed, one exemplar.
        """
        digest = essay_digest(script.essay)
        values = {
            "id": new_id("ex"),
            "owner": owner,
            "scheme_id": scheme.id,
            "scheme_version": scheme.version,
            "essay": script.essay,
            "essay_sha256": digest,
            "marks": json.dumps(script.marks),
            "source": source,
            "external_id": script.external_id,
            "marking_id": marking_id,
            "llm_marks": json.dumps(llm_marks) if llm_marks is not None else None,
            "llm_model": llm_model,
            "basis": basis,
            "created_at": utcnow(),
        }
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = insert(ExemplarRow).values(values).on_conflict_do_nothing(index_elements=_UNIQUE)
        # RETURNING, not rowcount: an ORM-enabled insert does not report rowcount on every driver.
        if s.execute(statement.returning(ExemplarRow.id)).scalar_one_or_none() is not None:
            return True
        row = s.scalars(
            ExemplarStore._query(owner, scheme.id, scheme.version).where(ExemplarRow.essay_sha256 == digest)
        ).one()
        row.marks = json.dumps(script.marks)
        row.source = source
        row.basis = basis
        row.external_id = script.external_id or row.external_id
        if marking_id is not None:
            row.marking_id = marking_id
            row.llm_marks = json.dumps(llm_marks) if llm_marks is not None else row.llm_marks
            row.llm_model = llm_model or row.llm_model
        row.created_at = utcnow()
        return False

    @staticmethod
    def _query(owner: str, scheme_id: str, version: str) -> Any:
        return select(ExemplarRow).where(
            ExemplarRow.owner == owner, ExemplarRow.scheme_id == scheme_id, ExemplarRow.scheme_version == version
        )

    def listing(self, owner: str, scheme_id: str, version: str) -> list[ExemplarView]:
        """The owner's exemplars for one scheme version, oldest first."""
        with self._store.session() as s:
            rows = s.scalars(self._query(owner, scheme_id, version).order_by(ExemplarRow.created_at, ExemplarRow.id))
            return [
                ExemplarView(
                    id=r.id,
                    external_id=r.external_id,
                    source=r.source,
                    marks=json.loads(r.marks),
                    marking_id=r.marking_id,
                    words=len(r.essay.split()),
                    preview=r.essay[:120],
                    created_at=r.created_at,
                    basis=r.basis or "imported",
                    counted=(r.basis or "imported") in COUNTED,
                )
                for r in rows
            ]

    def counts(self, owner: str, scheme_id: str, version: str) -> ExemplarCounts:
        """All the owner's marked scripts for the scheme version, the counted ones, and those newer than the fit."""
        with self._store.session() as s:
            # The fit's time only: its body (every exemplar's text) is not read to count.
            fitted_at = s.scalar(_latest_fit(owner, scheme_id, version, CalibratorRow.fitted_at))
            base = (
                select(func.count())
                .select_from(ExemplarRow)
                .where(
                    ExemplarRow.owner == owner,
                    ExemplarRow.scheme_id == scheme_id,
                    ExemplarRow.scheme_version == version,
                )
            )
            counted = _counted(base)
            newer = counted if fitted_at is None else counted.where(ExemplarRow.created_at > fitted_at)
            return ExemplarCounts(
                total=int(s.scalar(base) or 0),
                counted=int(s.scalar(counted) or 0),
                new_since_fit=int(s.scalar(newer) or 0),
                fitted=fitted_at is not None,
            )

    def refit_due(self, owner: str, scheme_id: str, version: str) -> bool:
        """After an approval: refit when calibration can start, or ``REFIT_EVERY`` new counted scripts came in."""
        counts = self.counts(owner, scheme_id, version)
        if counts.counted < MIN_SCRIPTS:
            return False
        return not counts.fitted or counts.new_since_fit >= REFIT_EVERY

    def delete(self, owner: str, scheme_id: str, version: str, exemplar_id: str) -> None:
        """Remove one exemplar and the fit holding its text (work can be withdrawn); 404 if not the owner's."""
        with self._store.transaction() as s:
            done = s.execute(
                delete(ExemplarRow).where(
                    ExemplarRow.id == exemplar_id,
                    ExemplarRow.owner == owner,
                    ExemplarRow.scheme_id == scheme_id,
                    ExemplarRow.scheme_version == version,
                )
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                raise NotFoundError(f"no exemplar {exemplar_id!r} for {scheme_id}@{version}")
            # The fit in use holds every exemplar's text: it goes with the script, in the same
            # transaction, and the background refit replaces it (until then, marks are uncalibrated).
            _drop_fits(s, owner, scheme_id, version)

    def scripts(self, owner: str, scheme_id: str, version: str) -> tuple[list[Script], str | None]:
        """The newest counted exemplars as calibration scripts, and the model behind their signals (if shared)."""
        with self._store.session() as s:
            rows = list(
                s.scalars(
                    _counted(self._query(owner, scheme_id, version))
                    .order_by(ExemplarRow.created_at.desc(), ExemplarRow.id.desc())
                    .limit(MAX_EXEMPLARS_FITTED)
                )
            )
        models = {r.llm_model for r in rows}
        model = next(iter(models)) if len(models) == 1 else None
        scripts = [
            Script(
                essay=r.essay,
                marks=json.loads(r.marks),
                llm_marks=json.loads(r.llm_marks) if r.llm_marks and model is not None else None,
            )
            for r in reversed(rows)
        ]
        return scripts, model

    def refit(self, owner: str, scheme: MarkScheme) -> Calibrator | None:
        """Fit on the current exemplars and keep that fit alone (None below ``MIN_SCRIPTS`` scripts).

        Superseded fits are deleted, not kept: a fit holds its exemplars' text, and a withdrawn
        script must leave the database. Each result keeps its calibrator's version and figures.
        """
        read_at = utcnow()  # the fit stands for the scripts as they were now ("new since the fit" counts from here)
        scripts, model = self.scripts(owner, scheme.id, scheme.version)
        calibrator = None
        if len(scripts) >= MIN_SCRIPTS:
            calibrator = fit_calibrator(scripts, scheme, llm_model=model).model_copy(update={"fitted_at": read_at})
        with self._store.transaction() as s:
            _drop_fits(s, owner, scheme.id, scheme.version)
            if calibrator is not None:
                s.add(
                    CalibratorRow(
                        version=calibrator.version,
                        owner=owner,
                        scheme_id=scheme.id,
                        scheme_version=scheme.version,
                        body=calibrator.model_dump_json(),
                        fitted_at=calibrator.fitted_at,
                    )
                )
        return calibrator

    def current(self, owner: str, scheme_id: str, version: str) -> Calibrator | None:
        """The owner's latest fit for the scheme version.

        Every marking asks, so the fit's body (every exemplar's text) is read and parsed once per
        process: a fit row is never changed, only replaced by a new row (a new pk), and the lookup
        that finds the latest one reads its key columns alone.
        """
        with self._store.session() as s:
            latest = s.execute(
                _latest_fit(owner, scheme_id, version, CalibratorRow.pk).add_columns(
                    CalibratorRow.version, CalibratorRow.fitted_at
                )
            ).first()
            if latest is None:
                return None
            key = (owner, scheme_id, version, *latest)
            with _PARSED_FITS_LOCK:
                cached = _PARSED_FITS.get(key)
            if cached is not None:
                return cached
            body = s.scalar(select(CalibratorRow.body).where(CalibratorRow.pk == latest.pk))
            if body is None:  # replaced between the two reads: read the newest again
                return self.current(owner, scheme_id, version)
            calibrator = Calibrator.model_validate_json(body)
        with _PARSED_FITS_LOCK:
            _PARSED_FITS[key] = calibrator
            while len(_PARSED_FITS) > _PARSED_FITS_KEPT:
                del _PARSED_FITS[next(iter(_PARSED_FITS))]
        return calibrator
