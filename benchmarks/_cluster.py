"""Celery-mode processes for benchmarks: redis-server, PostgreSQL, one API and N `draftmark worker`s.

Redis and PostgreSQL come from scripts/test-redis.sh and scripts/test-postgres.sh (on free ports,
so a colleague's test servers are left alone); each run gets a fresh database and an empty Redis.
"""

from __future__ import annotations

import bisect
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

from benchmarks._server import free_port
from service.llm.fake import FakeMarker
from service.testing import StubReply, fake_marker_responder
from service.testing.openai_stub import Responder

ROOT = Path(__file__).resolve().parent.parent
_CANDIDATE = re.compile(r"Candidate (\d+)\.")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class Cluster:
    """An API process and worker processes sharing one database and one Redis; logs in one file."""

    def __init__(self, db_url: str, redis_url: str, stub_url: str, log: Path, **extra: str) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DRAFTMARK_")},
            "DRAFTMARK_DATABASE_URL": db_url,
            "DRAFTMARK_REDIS_URL": redis_url,
            "DRAFTMARK_BACKEND": "openai",
            "DRAFTMARK_LLM_BASE_URL": stub_url,
            "DRAFTMARK_LLM_MODEL": "stub",
            "DRAFTMARK_AUTH_DISABLED": "1",
            "DRAFTMARK_MAX_BATCH_ITEMS": "1000",
            "DRAFTMARK_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            **extra,
        }
        self.log = log
        self.api_proc: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.url = f"http://127.0.0.1:{free_port()}"

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def start(self, workers: int, concurrency: int) -> None:
        """Start the workers and the API; return once the API sees every worker's heartbeat."""
        for _ in range(workers):
            self.workers.append(self._start("worker", "--concurrency", str(concurrency), "--log-level", "warning"))
        port = self.url.rsplit(":", 1)[1]
        self.api_proc = self._start("serve", "--port", port, "--log-level", "warning")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2)
                if ready.status_code == 200 and ready.json()["batches"]["workers"] == workers:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"cluster not ready; see {self.log}")

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the API and by all workers together."""
        assert self.api_proc is not None
        return {"api": cpu_seconds(self.api_proc.pid), "workers": sum(cpu_seconds(w.pid) for w in self.workers)}

    def stop(self) -> None:
        """SIGTERM everything (Celery's warm shutdown), then kill what is left after 30 s."""
        procs = [*self.workers, *([self.api_proc] if self.api_proc else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def stored_per_item(db_url: str, batch_id: str) -> Counter[str]:
    """Stored markings per external id for one batch."""
    engine = sqlalchemy.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT external_id, COUNT(*) FROM markings WHERE batch_id = :b GROUP BY external_id"),
            {"b": batch_id},
        ).all()
    engine.dispose()
    return Counter({r[0]: r[1] for r in rows})
