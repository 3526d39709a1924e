"""Celery-mode processes on one machine: one `draftmark serve` and N `draftmark worker`s.

Shared by the Celery tests (tests/test_batch_celery.py) and the batch benchmark
(benchmarks/batch.py --mode celery): every process gets the same database, Redis and
OpenAI-compatible stub, and all their output goes to one log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class Cluster:
    """An API process and worker processes sharing one database and one Redis; logs in one file.

    ``extra`` settings (``DRAFTMARK_*``) are added to the environment; the caller's own
    ``DRAFTMARK_*`` variables are not inherited, so a developer's settings cannot leak in.
    """

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

    def worker(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        """Start one `draftmark worker` with ``concurrency`` threads."""
        proc = self._start("worker", "--concurrency", str(concurrency), "--log-level", "warning")
        self.workers.append(proc)
        return proc

    def api(self, workers: int, timeout_s: float = 90) -> None:
        """Start the API; return once `/readyz` sees ``workers`` workers' heartbeats."""
        self.api_proc = self._start("serve", "--port", self.url.rsplit(":", 1)[1], "--log-level", "warning")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2)
                if ready.status_code == 200 and ready.json()["batches"]["workers"] == workers:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"cluster not ready; see {self.log}:\n" + self.log.read_text()[-3000:])

    def start(self, workers: int, concurrency: int) -> None:
        """``workers`` workers, then the API, ready."""
        for _ in range(workers):
            self.worker(concurrency)
        self.api(workers)

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
    """Stored markings per external id for one batch (the database is the source of truth)."""
    engine = sqlalchemy.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT external_id, COUNT(*) FROM markings WHERE batch_id = :b GROUP BY external_id"),
            {"b": batch_id},
        ).all()
    engine.dispose()
    return Counter({r[0]: r[1] for r in rows})
