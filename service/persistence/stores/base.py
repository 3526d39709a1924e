"""The shared part of every per-resource store: the engine, sessions and the write-transaction helper."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker


def new_id(prefix: str) -> str:
    """A short, unguessable, prefixed id."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


class StoreBase:
    """Engine, sessions and one write lock, shared by the per-resource stores ``Store`` combines."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite allows one writer at a time and makes the others sleep in its busy handler
        # (1-100 ms steps); queueing writers on an in-process lock is much faster. PostgreSQL
        # handles concurrent writers itself.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

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
