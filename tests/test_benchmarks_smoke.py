"""The measuring scripts run and their correctness claims hold (no timing is asserted here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.result import MarkingResult

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env_extra: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAFTMARK_")} | (env_extra or {})
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_batch_benchmark_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # The benchmark's server keeps its SQLite file in a mkdtemp folder: put it under tmp_path and read it here,
    # so "lost: 0; duplicated: 0" is checked against the store, not taken from the benchmark's own report.
    out = run(
        "benchmarks.batch", "--essays", "60", "--latency", "0.05", "--concurrency", "16",
        env_extra={"TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert "done 60, failed 0" in out and "lost: 0; duplicated: 0" in out
    (db,) = tmp_path.glob("draftmark-bench-*/bench.db")
    with sqlite3.connect(db) as conn:
        ((batch_id,),) = conn.execute("SELECT id FROM batches").fetchall()
        items = conn.execute(
            "SELECT external_id, status, marking_id FROM batch_items WHERE batch_id = ?", (batch_id,)
        ).fetchall()
        markings = conn.execute(
            "SELECT id, external_id, essay, result FROM markings WHERE batch_id = ?", (batch_id,)
        ).fetchall()
    expected = [f"student-{i:05d}" for i in range(60)]
    assert sorted(e for e, _, _ in items) == expected and {s for _, s, _ in items} == {"done"}
    assert sorted(e for _, e, _, _ in markings) == expected, "one stored marking per essay: none lost, none twice"
    assert {m for _, _, m in items} == {m for m, _, _, _ in markings}, "each item points at its own marking"
    for _, external_id, essay, result in markings:
        assert essay.startswith(f"Candidate {int(external_id.removeprefix('student-'))}.\n"), external_id
        assert MarkingResult.model_validate_json(result).provenance.model == "stub"


def test_load_benchmark_reports_figures_without_errors() -> None:
    out = run("benchmarks.load", "--client", "python", "--delay", "0", "--concurrency", "4", "--seconds", "2")
    assert re.search(r"errors: 0\s+throughput: \d+ req/s", out), out


@pytest.mark.skipif(
    shutil.which("redis-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
    reason="needs redis-server and PostgreSQL (Debian packages; scripts/test-redis.sh and test-postgres.sh)",
)
def test_celery_batch_benchmark_loses_and_duplicates_nothing_and_keeps_the_limit(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    run(
        "benchmarks.batch", "--mode", "celery", "--essays", "30", "--workers", "1,2", "--worker-concurrency", "4",
        "--latency", "0.02", "--warmup", "1", "--rpm", "600", "--rpm-essays", "6", "--json", str(report),
    )  # fmt: skip
    figures = json.loads(report.read_text())
    for batch in [*figures["scaling"], figures["rate_limited"]]:
        n = batch["essays"]
        assert (batch["done"], batch["stored"], batch["lost"], batch["duplicated"]) == (n, n, 0, 0), batch
        assert batch["stub_requests"] == batch["essays"] and batch["essays_asked_more_than_once"] == 0
    assert figures["rate_limited"]["stub_max_in_any_60s"] <= 600
