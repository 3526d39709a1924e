"""The measuring scripts run and their correctness claims hold (no timing is asserted here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAFTMARK_")}
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_batch_benchmark_loses_and_duplicates_nothing() -> None:
    out = run("benchmarks.batch", "--essays", "60", "--latency", "0.05", "--concurrency", "16")
    assert "done 60, failed 0" in out and "lost: 0; duplicated: 0" in out


def test_load_benchmark_reports_figures_without_errors() -> None:
    out = run("benchmarks.load", "--client", "python", "--delay", "0", "--concurrency", "4", "--seconds", "2")
    assert re.search(r"errors: 0\s+throughput: \d+ req/s", out), out
