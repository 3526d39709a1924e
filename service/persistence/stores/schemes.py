"""Mark schemes: each caller's own versions beside the read-only built-ins."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, case, select
from sqlalchemy.exc import IntegrityError

from schemas.scheme import MarkScheme
from service.errors import ConflictError
from service.persistence.db import BUILTIN_OWNER, SchemeRow
from service.persistence.stores.base import StoreBase

_LATEST_TTL_S = 5.0
"""How long "the newest version of scheme X" is cached (other processes may register versions)."""


@dataclass(frozen=True)
class RegisteredScheme:
    """A scheme version as listed to a caller."""

    scheme: MarkScheme
    builtin: bool


class SchemeStore(StoreBase):
    """Scheme versions by owner.

    A scheme belongs to the API key that registered it, or to BUILTIN_OWNER (shipped, read-only).
    A caller resolves its own schemes and the built-ins, its own first; an id@version never
    changes once registered, so a resolved scheme may be cached for good.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._scheme_cache: dict[tuple[str, str, str], MarkScheme] = {}
        """(owner, id, version) -> the scheme that owner resolves it to."""
        self._latest_version: dict[tuple[str, str], tuple[str, float]] = {}

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
                RegisteredScheme(MarkScheme.model_validate_json(r.body), builtin=r.owner == BUILTIN_OWNER) for r in rows
            ]
