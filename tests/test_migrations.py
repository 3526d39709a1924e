"""Migrations: processes that start together on one fresh database (SQLite or PostgreSQL) all succeed,
and apply each step once."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import inspect, text

from service.persistence.db import MIGRATIONS, make_engine, migrate
from service.persistence.stores import Store


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


def test_a_process_starting_while_another_writes_waits_for_wal_mode(tmp_path: Path) -> None:
    """SQLite does not apply its busy timeout to the switch into WAL mode; make_engine waits it out."""
    import sqlite3
    import time

    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # another process mid-migration on a file not yet in WAL mode
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    engine = make_engine(f"sqlite:///{path}")
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert time.monotonic() - started >= 0.3, "it waited for the other writer"
    finally:
        release.join()
        engine.dispose()
        holder.close()


def test_v11_adds_a_class_sets_name_and_skipped_files_to_existing_batches(db_url: str) -> None:
    """A database at version 10 (batches without the new columns, one batch in it) upgrades and keeps its batch."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for step in MIGRATIONS[:10]:
            step(conn)  # _v1 creates today's batches table: take the columns _v11 adds away again
        for column in ("name", "skipped", "skipped_dismissed_at"):
            conn.execute(text(f"ALTER TABLE batches DROP COLUMN {column}"))
        conn.execute(text("CREATE TABLE draftmark_schema (version INTEGER NOT NULL)"))
        for number in range(1, 11):
            conn.execute(text("INSERT INTO draftmark_schema (version) VALUES (:v)"), {"v": number})
        conn.execute(
            text(
                "INSERT INTO batches (id, scheme_id, scheme_version, samples, webhook_status, created_at) "
                "VALUES ('bt_old', 'stalin-power-1929', '1.0', 1, 'none', CURRENT_TIMESTAMP)"
            )
        )
    try:
        assert migrate(engine) == len(MIGRATIONS)
        assert migrate(engine) == len(MIGRATIONS), "migrating again changes nothing"
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("batches")}
            assert {"name", "skipped", "skipped_dismissed_at"} <= columns
            old = conn.execute(text("SELECT name, skipped, skipped_dismissed_at FROM batches")).one()
        assert tuple(old) == (None, None, None)
        store = Store(engine)
        view = store.get_batch("bt_old")
        assert (view.name, view.skipped, view.skipped_dismissed_at) == (None, (), None)
        store.dismiss_skipped("bt_old")
        assert store.get_batch("bt_old").skipped_dismissed_at is not None
    finally:
        engine.dispose()


def test_v12_adds_the_comment_bank_to_a_version_11_database(db_url: str) -> None:
    """A database at version 11 gains the comment_bank table, one saved text per owner and scheme."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE draftmark_schema (version INTEGER NOT NULL)"))
        for number, step in enumerate(MIGRATIONS[:11], start=1):
            step(conn)
            conn.execute(text("INSERT INTO draftmark_schema (version) VALUES (:v)"), {"v": number})
        assert "comment_bank" not in inspect(conn).get_table_names()
    try:
        assert migrate(engine) == len(MIGRATIONS) == 12
        assert migrate(engine) == len(MIGRATIONS), "migrating again changes nothing"
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("comment_bank")}
            uniques = [set(u["column_names"]) for u in inspect(conn).get_unique_constraints("comment_bank")]
        assert {"id", "owner", "scheme_id", "text", "created_at"} <= columns
        assert {"owner", "scheme_id", "text_sha256"} in uniques
        store = Store(engine)
        saved, created = store.save_comment("stalin-power-1929", "Date each example.", owner="t1")
        assert created and store.save_comment("stalin-power-1929", "Date each example.", owner="t1") == (saved, False)
        assert store.list_comments("stalin-power-1929", owner="t2") == []
    finally:
        engine.dispose()
