"""Migrations: processes that start together on one fresh database (SQLite or PostgreSQL) all succeed,
and apply each step once."""

from __future__ import annotations

import threading

from sqlalchemy import text

from service.api.db import MIGRATIONS, make_engine, migrate


def test_concurrent_start_ups_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        engine = make_engine(db_url)
        try:
            barrier.wait()
            migrate(engine)
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = make_engine(db_url)
    with engine.connect() as conn:
        versions = [row[0] for row in conn.execute(text("SELECT version FROM draftmark_schema ORDER BY version"))]
    engine.dispose()
    assert versions == list(range(1, len(MIGRATIONS) + 1))
