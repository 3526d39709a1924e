"""Celery-mode processes for benchmarks: redis-server, PostgreSQL, one API and N `draftmark worker`s.

Redis and PostgreSQL come from scripts/test-redis.sh and scripts/test-postgres.sh (on free ports,
so a colleague's test servers are left alone); each run gets a fresh database and an empty Redis.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy

from service.llm.fake import FakeMarker
from service.testing import StubReply, fake_marker_responder
from service.testing.cluster import Cluster, cpu_seconds, free_port, stored_per_item
from service.testing.openai_stub import Responder

__all__ = ["Cluster", "StubLog", "cpu_seconds", "fresh_database", "services", "stored_per_item"]

ROOT = Path(__file__).resolve().parent.parent
_CANDIDATE = re.compile(r"Candidate (\d+)\.")


def _exports(script: str, port_env: str) -> dict[str, str]:
    """Run one of scripts/test-*.sh on a free port and parse the ``export NAME=value`` lines it prints."""
    env = {**os.environ, port_env: str(free_port())}
    done = subprocess.run(["bash", str(ROOT / "scripts" / script)], env=env, capture_output=True, text=True, check=True)
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = value.strip("'")
    return found


@contextmanager
def services() -> Iterator[tuple[str, str]]:
    """Yield (PostgreSQL admin URL, Redis URL) of throwaway servers; stops them afterwards."""
    redis = _exports("test-redis.sh", "REDIS_PORT_TEST")
    try:
        postgres = _exports("test-postgres.sh", "PGPORT_TEST")
        try:
            yield postgres["TEST_POSTGRES_URL"], redis["TEST_REDIS_URL"]
        finally:
            subprocess.run(postgres["TEST_POSTGRES_STOP"], shell=True, capture_output=True, check=False)
    finally:
        subprocess.run(redis["TEST_REDIS_STOP"], shell=True, capture_output=True, check=False)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the admin URL's server; dropped afterwards."""
    name = f"dm_bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class StubLog:
    """What reached the stub: requests per candidate number and their arrival times."""

    per_candidate: Counter[str] = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def responder(self, delay_s: float) -> Responder:
        """FakeMarker answers after ``delay_s``, each request counted on arrival."""
        good = fake_marker_responder(FakeMarker(delay_s=delay_s))

        def respond(body: dict[str, Any]) -> StubReply:
            found = _CANDIDATE.search(body["messages"][-1]["content"])
            with self._lock:
                self.per_candidate[found.group(1) if found else "?"] += 1
                self.arrivals.append(time.monotonic())
            return good(body)

        return respond

    def reset(self) -> None:
        """Forget everything (between runs on one stub)."""
        with self._lock:
            self.per_candidate.clear()
            self.arrivals.clear()

    def max_in_window(self, seconds: float) -> int:
        """The most requests that arrived in any window of ``seconds`` (each window starts at an arrival)."""
        times = sorted(self.arrivals)
        return max((bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)
