"""Batch benchmark: 1,000 essays through the real server against a 200 ms OpenAI-compatible stub.

In-process mode (the API process marks the batch itself, SQLite):

    .venv/bin/python -m benchmarks.batch --essays 1000 --latency 0.2 --concurrency 64

Celery mode (issue 13): redis-server and PostgreSQL from scripts/test-redis.sh and
scripts/test-postgres.sh, one API process and N `draftmark worker` processes, for each N in
--workers; then a run with DRAFTMARK_LLM_REQUESTS_PER_MINUTE set, checking the limit at the stub:

    .venv/bin/python -m benchmarks.batch --mode celery --essays 1000 --workers 1,2,4 \\
        --worker-concurrency 16 --rpm 300 --rpm-essays 400 --json docs/bench-batch.json

Both modes talk to the stub through the real openai/langchain client and check, in the
database, that every item was marked exactly once (zero lost, zero duplicated).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

from benchmarks._cluster import Cluster, StubLog, cpu_seconds, fresh_database, services, stored_per_item
from benchmarks._server import server_process
from service.llm.fake import FakeMarker
from service.persistence.db import make_engine, migrate
from service.testing import OpenAIStub, fake_marker_responder

ROOT = Path(__file__).resolve().parent.parent
SCHEME = "stalin-power-1929"


def make_items(count: int, lead: str = "Candidate") -> list[dict[str, str]]:
    """Distinct essays (the candidate number leads each one) so the stub can tell them apart."""
    essay = (ROOT / "examples" / "stalin-1929.txt").read_text(encoding="utf-8")
    return [{"external_id": f"student-{i:05d}", "essay": f"{lead} {i}.\n\n{essay}"} for i in range(count)]


def _submit_and_wait(client: httpx.Client, engine: sqlalchemy.Engine, items: list[dict[str, str]]) -> dict[str, Any]:
    """POST one batch and wait until nothing is queued or running; its id, counts and timings."""
    started = time.perf_counter()
    response = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": items})
    response.raise_for_status()
    batch_id = response.json()["id"]
    accepted = time.perf_counter() - started
    while True:
        counts = _item_counts(engine, batch_id)
        if not counts.get("queued") and not counts.get("running"):
            break
        time.sleep(0.2)
    return {"id": batch_id, "counts": counts, "accepted_s": accepted, "wall_s": time.perf_counter() - started}


def run_inprocess(args: argparse.Namespace) -> None:
    """The API process marks the batch with DRAFTMARK_BATCH_CONCURRENCY tasks; SQLite."""
    items = make_items(args.essays)
    with OpenAIStub(responder=fake_marker_responder(FakeMarker(delay_s=args.latency))) as stub:
        env = {
            "DRAFTMARK_LLM_BASE_URL": stub.base_url,
            "DRAFTMARK_LLM_MODEL": "stub",
            "DRAFTMARK_BATCH_CONCURRENCY": str(args.concurrency),
            "DRAFTMARK_MAX_BATCH_ITEMS": str(max(1000, args.essays)),
            "DRAFTMARK_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        with (
            server_process(env, fake_delay=None) as (base, db, proc),
            httpx.Client(base_url=base, timeout=120) as client,
        ):
            if args.warmup:
                # Untimed: the first items pay one-off costs (importing openai/langchain, loading the word list).
                warm = client.post(
                    "/v1/batches", json={"scheme_id": SCHEME, "items": make_items(args.warmup, "Warm-up")}
                )
                warm.raise_for_status()
                while True:
                    warm_counts = client.get(f"/v1/batches/{warm.json()['id']}").json()["counts"]
                    if warm_counts["queued"] == warm_counts["running"] == 0:
                        break
                    time.sleep(0.5)
            warm_requests = len(stub.requests)
            cpu_before = cpu_seconds(proc.pid)
            started = time.perf_counter()
            response = client.post("/v1/batches", json={"scheme_id": SCHEME, "items": items})
            response.raise_for_status()
            batch_id = response.json()["id"]
            accepted = time.perf_counter() - started
            # Counts from the database: polling GET /v1/batches/{id} would load the process measured
            # (it reads every stored result of the batch).
            engine = make_engine(f"sqlite:///{db}")
            while True:
                counts = _item_counts(engine, batch_id)
                if not counts.get("queued") and not counts.get("running"):
                    break
                time.sleep(0.5)
            engine.dispose()
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(proc.pid) - cpu_before
            with sqlite3.connect(db) as conn:
                rows = conn.execute(
                    "SELECT external_id, COUNT(*) FROM markings WHERE batch_id = ? GROUP BY external_id", (batch_id,)
                ).fetchall()
        requests_seen = len(stub.requests) - warm_requests
    expected = {f"student-{i:05d}" for i in range(args.essays)}
    stored = {r[0] for r in rows}
    duplicated = sum(1 for r in rows if r[1] > 1)
    lost = len(expected - stored)
    print(
        f"{args.essays} essays, stub latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}"
        + (f", after an untimed warm-up batch of {args.warmup}" if args.warmup else "")
    )
    print(
        f"accepted in {accepted:.2f} s; all finished in {elapsed:.1f} s (target < 30 s); "
        f"done {counts.get('done', 0)}, failed {counts.get('failed', 0)}"
    )
    print(f"stored results: {len(stored)}; lost: {lost}; duplicated: {duplicated}; model requests: {requests_seen}")
    print(
        f"server CPU: {server_cpu:.1f} s, {server_cpu / args.essays * 1000:.1f} ms per item "
        "(the task body Celery workers run, with the real openai/langchain client, plus the API's share)"
    )


def _item_counts(engine: sqlalchemy.Engine, batch_id: str) -> dict[str, int]:
    """Items per status, read from the database (polling the API would load the process measured)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT status, COUNT(*) FROM batch_items WHERE batch_id = :b GROUP BY status"),
            {"b": batch_id},
        ).all()
    return {str(status): int(n) for status, n in rows}


def celery_run(
    admin_url: str,
    redis_url: str,
    stub: OpenAIStub,
    seen: StubLog,
    *,
    workers: int,
    concurrency: int,
    essays: int,
    warmup: int,
    rpm: int = 0,
) -> dict[str, Any]:
    """One batch on a fresh database and an empty Redis; the figures and the lost/duplicate counts.

    A warm-up batch of ``warmup`` items goes first, untimed: each pool thread builds its LLM
    client (and imports openai/langchain) on its first task, a one-off cost per worker start.
    """
    subprocess.run(["redis-cli", "-u", redis_url, "FLUSHDB"], check=True, capture_output=True)
    seen.reset()
    items = make_items(essays)
    extra = {"DRAFTMARK_LLM_REQUESTS_PER_MINUTE": str(rpm)} if rpm else {}
    log = Path(tempfile.mkdtemp(prefix="draftmark-bench-celery-")) / "cluster.log"
    with fresh_database(admin_url) as db_url:
        engine = make_engine(db_url)
        # Processes that start at once on an empty PostgreSQL database race in migrate() (a
        # UniqueViolation on CREATE TABLE IF NOT EXISTS), so the schema is made first, as a deploy would.
        migrate(engine)
        cluster = Cluster(db_url, redis_url, stub.base_url, log, **extra)
        try:
            cluster.start(workers, concurrency)
            with httpx.Client(base_url=cluster.url, timeout=120) as client:
                warm = _submit_and_wait(client, engine, make_items(warmup, lead="Warm-up")) if warmup else None
                seen.reset()
                cpu_before, bench_before = cluster.cpu(), time.process_time()
                batch = _submit_and_wait(client, engine, items)
                cpu_after, bench_after = cluster.cpu(), time.process_time()
        finally:
            cluster.stop()
            engine.dispose()
        stored = stored_per_item(db_url, batch["id"])
    counts, elapsed = batch["counts"], batch["wall_s"]
    expected = {item["external_id"] for item in items}
    arrivals = sorted(seen.arrivals)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return {
        "workers": workers,
        "threads_per_worker": concurrency,
        "essays": essays,
        "requests_per_minute_limit": rpm or None,
        "warmup_items": warmup,
        "warmup_wall_s": round(warm["wall_s"], 2) if warm else None,
        "accepted_s": round(batch["accepted_s"], 2),
        "wall_s": round(elapsed, 2),
        "items_per_s": round(essays / elapsed, 2),
        "done": counts.get("done", 0),
        "failed": counts.get("failed", 0),
        "stored": len(stored),
        "lost": len(expected - set(stored)),
        "duplicated": sum(1 for n in stored.values() if n > 1),
        "stub_requests": len(arrivals),
        "essays_asked_more_than_once": sum(1 for n in seen.per_candidate.values() if n > 1),
        "stub_max_in_any_60s": seen.max_in_window(60.0),
        "stub_max_in_any_10s": seen.max_in_window(10.0),
        "stub_rate_per_min": round((len(arrivals) - 1) / span * 60, 1) if span else None,
        "stub_min_gap_ms": round(min((b - a for a, b in itertools.pairwise(arrivals)), default=0) * 1000, 1),
        "cpu_s": {
            "workers": round(cpu_after["workers"] - cpu_before["workers"], 1),
            "api": round(cpu_after["api"] - cpu_before["api"], 1),
            "bench_stub_and_poller": round(bench_after - bench_before, 1),
        },
    }


def _print_row(run: dict[str, Any], ratio: float | None) -> None:
    cpu = run["cpu_s"]
    print(
        f"{run['workers']:>7} {run['threads_per_worker']:>7} {run['essays']:>6} {run['wall_s']:>7.1f} "
        f"{run['items_per_s']:>7.1f} {(f'{ratio:.2f}x' if ratio else '-'):>6} {run['done']:>5} {run['failed']:>6} "
        f"{run['lost']:>4} {run['duplicated']:>4} {run['stub_requests']:>6}   "
        f"{cpu['workers']:.0f}/{cpu['api']:.0f}/{cpu['bench_stub_and_poller']:.0f}"
    )


def run_celery(args: argparse.Namespace) -> None:
    """Scaling over --workers, then the rate-limited run; prints a table and writes --json."""
    counts = [int(n) for n in args.workers.split(",")]
    seen = StubLog()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": os.getloadavg()},
        "setup": {
            "stub_latency_s": args.latency,
            "threads_per_worker": args.worker_concurrency,
            "warmup_items_per_thread": args.warmup,
            "database": "PostgreSQL (scripts/test-postgres.sh, fsync off)",
            "broker": "redis-server (scripts/test-redis.sh)",
            "processes": "1 API (draftmark serve) + N draftmark worker; the stub runs in the benchmark process",
        },
    }
    header = (
        f"{'workers':>7} {'threads':>7} {'essays':>6} {'wall s':>7} {'items/s':>7} {'ratio':>6} {'done':>5} "
        f"{'failed':>6} {'lost':>4} {'dup':>4} {'stub':>6}   cpu s workers/api/bench"
    )
    with services() as (admin_url, redis_url), OpenAIStub(responder=seen.responder(args.latency)) as stub:
        print(f"celery mode: stub latency {args.latency * 1000:.0f} ms, {args.worker_concurrency} threads per worker")
        print(header)
        runs: list[dict[str, Any]] = []
        for n in counts:
            run = celery_run(
                admin_url,
                redis_url,
                stub,
                seen,
                workers=n,
                concurrency=args.worker_concurrency,
                essays=args.essays,
                warmup=args.warmup * n * args.worker_concurrency,
            )
            run["ratio_vs_first"] = round(run["items_per_s"] / runs[0]["items_per_s"], 2) if runs else 1.0
            runs.append(run)
            _print_row(run, run["ratio_vs_first"])
        report["scaling"] = runs
        if args.rpm:
            limited = celery_run(
                admin_url,
                redis_url,
                stub,
                seen,
                workers=max(counts),
                concurrency=args.worker_concurrency,
                essays=args.rpm_essays,
                warmup=0,
                rpm=args.rpm,
            )
            report["rate_limited"] = limited
            print(f"\nDRAFTMARK_LLM_REQUESTS_PER_MINUTE={args.rpm}, {args.rpm_essays} essays, {max(counts)} workers:")
            print(header)
            _print_row(limited, None)
            print(
                f"at the stub: max {limited['stub_max_in_any_60s']} requests in any 60 s window (limit {args.rpm}), "
                f"max {limited['stub_max_in_any_10s']} in any 10 s (limit {args.rpm // 6}), "
                f"mean {limited['stub_rate_per_min']}/min, closest two {limited['stub_min_gap_ms']} ms apart"
            )
    first, target = runs[0], [r for r in runs if r["essays"] >= 1000]
    print(
        "\n1,000 essays < 30 s: "
        + (", ".join(f"N={r['workers']} {r['wall_s']:.1f} s" for r in target) if target else "not run (fewer essays)")
        + "; scaling "
        + " : ".join(f"{r['items_per_s'] / first['items_per_s']:.2f}" for r in runs)
        + f" for N = {', '.join(str(r['workers']) for r in runs)}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["inprocess", "celery"], default="inprocess")
    parser.add_argument("--essays", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2, help="stub latency per request, seconds")
    parser.add_argument("--concurrency", type=int, default=64, help="in-process: DRAFTMARK_BATCH_CONCURRENCY")
    parser.add_argument("--workers", default="1,2,4", help="celery: worker process counts to run, comma-separated")
    parser.add_argument("--worker-concurrency", type=int, default=16, help="celery: threads per worker process")
    parser.add_argument("--rpm", type=int, default=300, help="celery: requests/minute for the limited run (0: skip)")
    parser.add_argument("--rpm-essays", type=int, default=400, help="celery: essays in the limited run")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="celery: untimed warm-up items per worker thread before each run (default 2); "
        "in-process: items in an untimed warm-up batch first (default 0)",
    )
    parser.add_argument("--json", help="celery: write the figures to this file")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 2 if args.mode == "celery" else 0
    if args.mode == "celery":
        run_celery(args)
    else:
        run_inprocess(args)


if __name__ == "__main__":
    main()
